#include "nonfinite_agreement.h"

#include <torch/torch.h>

#include <cmath>

#include "excel/comm/communicator.h"

namespace excel::train {

int nonfinite_ranks(const at::Tensor& loss, const std::vector<at::Tensor>& params, comm::Communicator* comm) {
  // One reduction on the device and one read of it (no per-parameter round trip).
  at::Tensor finite = torch::isfinite(loss.detach()).all();
  for (const auto& p : params)
    if (p.grad().defined()) finite = finite.logical_and(p.grad().isfinite().all());
  const bool ok = finite.item<bool>();
  at::Tensor bad = torch::tensor({ok ? 0.0 : 1.0}, torch::kDouble);
  if (comm) comm->all_reduce_sum(bad);
  return static_cast<int>(bad.item<double>());
}

}  // namespace excel::train
