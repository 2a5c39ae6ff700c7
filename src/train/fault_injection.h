// Test hooks for the data-parallel fault tests (TrainConfig::fault_*): a NaN loss on one rank at
// one iteration, or one rank hanging before backward. Inert unless configured.
#pragma once
#include <glog/logging.h>

#include <chrono>
#include <cmath>
#include <cstdint>
#include <thread>

#include <ATen/core/Tensor.h>

#include "excel/train/trainer.h"

namespace excel::train {

class FaultInjection {
 public:
  FaultInjection(const TrainConfig& cfg, int rank) : cfg_(cfg), rank_(rank) {}

  at::Tensor corrupt_loss(int64_t it, const at::Tensor& loss) const {
    return it == cfg_.fault_nan_step && rank_ == cfg_.fault_nan_rank ? loss * std::nan("") : loss;
  }

  void maybe_hang(int64_t it) const {
    if (it != cfg_.fault_hang_step || rank_ != cfg_.fault_hang_rank) return;
    LOG(WARNING) << "fault injection: rank " << rank_ << " hangs at iteration " << it;
    for (;;) std::this_thread::sleep_for(std::chrono::seconds(1));
  }

 private:
  const TrainConfig& cfg_;
  int rank_;
};

}  // namespace excel::train
