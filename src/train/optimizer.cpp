#include "excel/train/optimizer.h"

#include <torch/torch.h>

#include <cmath>

namespace excel::train {

PolyWarmupAdamW::PolyWarmupAdamW(std::vector<at::Tensor> params, const OptimizerConfig& cfg)
    : params_(std::move(params)), cfg_(cfg) {
  for (const auto& p : params_) {
    m_.push_back(torch::zeros_like(p, torch::MemoryFormat::Contiguous).detach());
    v_.push_back(torch::zeros_like(p, torch::MemoryFormat::Contiguous).detach());
  }
}

std::vector<double> PolyWarmupAdamW::group_lrs(int64_t gs) const {
  double factor;
  if (gs < cfg_.warmup_iters) {
    factor = 1.0 - (1.0 - static_cast<double>(gs) / static_cast<double>(cfg_.warmup_iters)) * (1.0 - cfg_.warmup_ratio);
  } else if (gs < cfg_.max_iters) {
    factor = std::pow(1.0 - static_cast<double>(gs) / static_cast<double>(cfg_.max_iters), cfg_.power);
  } else {
    factor = 0.0;
  }
  const double lr = cfg_.base_lr * factor;
  return {lr, lr, 10 * lr, 10 * lr};
}

double PolyWarmupAdamW::step() {
  torch::NoGradGuard ng;
  const double lr = group_lrs(step_)[3];
  ++step_;
  const double bc1 = 1.0 - std::pow(cfg_.beta1, static_cast<double>(step_));
  const double bc2 = 1.0 - std::pow(cfg_.beta2, static_cast<double>(step_));
  for (size_t i = 0; i < params_.size(); ++i) {
    at::Tensor& p = params_[i];
    const at::Tensor& g = p.grad();
    if (!g.defined()) continue;
    p.mul_(1.0 - lr * cfg_.weight_decay);
    m_[i].mul_(cfg_.beta1).add_(g, 1.0 - cfg_.beta1);
    v_[i].mul_(cfg_.beta2).addcmul_(g, g, 1.0 - cfg_.beta2);
    at::Tensor denom = (v_[i].sqrt() / std::sqrt(bc2)).add_(cfg_.eps);
    p.addcdiv_(m_[i], denom, -lr / bc1);
  }
  return lr;
}

void PolyWarmupAdamW::zero_grad() {
  for (auto& p : params_)
    if (p.grad().defined()) p.mutable_grad() = at::Tensor();
}

}  // namespace excel::train
