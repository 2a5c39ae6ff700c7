// PolyWarmupAdamW (§8.1): AdamW with PyTorch semantics and the reference's four parameter groups
// (three empty: backbone, backbone norms, cls head; the heads train in group 3 at 10 x lr).
#pragma once
#include <ATen/core/Tensor.h>

#include <cstdint>
#include <vector>

namespace excel::train {

struct OptimizerConfig {
  double base_lr = 1e-4;  // group 0; the heads' group uses 10 x base_lr
  double weight_decay = 1e-2;
  double beta1 = 0.9, beta2 = 0.999, eps = 1e-8;
  int64_t warmup_iters = 50;
  int64_t max_iters = 30000;
  double warmup_ratio = 1e-6;
  double power = 1.0;
};

class PolyWarmupAdamW {
 public:
  PolyWarmupAdamW(std::vector<at::Tensor> params, const OptimizerConfig& cfg);

  // Learning rate of the four groups before optimiser step `gs` (0-based).
  std::vector<double> group_lrs(int64_t gs) const;
  double lr(int64_t gs) const { return group_lrs(gs)[3]; }

  // One step with the parameters' .grad(); returns the lr used. Parameters without a gradient
  // are left untouched.
  double step();
  void zero_grad();

  int64_t steps_taken() const { return step_; }
  // State for checkpoints: exp_avg and exp_avg_sq per parameter, and the step count.
  std::vector<at::Tensor>& exp_avg() { return m_; }
  std::vector<at::Tensor>& exp_avg_sq() { return v_; }
  void set_steps_taken(int64_t s) { step_ = s; }
  const std::vector<at::Tensor>& params() const { return params_; }

 private:
  std::vector<at::Tensor> params_, m_, v_;
  OptimizerConfig cfg_;
  int64_t step_ = 0;
};

}  // namespace excel::train
