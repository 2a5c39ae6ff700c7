// A step whose loss or gradients are not finite on any rank is skipped on every rank: each rank
// checks its own, and one all-reduce makes the decision common (no rank steps alone).
#pragma once
#include <ATen/core/Tensor.h>

#include <vector>

namespace excel::comm {
class Communicator;
}

namespace excel::train {

// Number of ranks whose loss or gradients (after backward, before the gradient sum) hold a NaN or
// an infinity; collective over `comm` (nullptr: this process alone).
int nonfinite_ranks(const at::Tensor& loss, const std::vector<at::Tensor>& params, comm::Communicator* comm);

}  // namespace excel::train
