#include "nonfinite_agreement.h"

#include <torch/torch.h>

#include <cmath>

#include "excel/comm/communicator.h"

namespace excel::train {

int nonfinite_ranks(const at::Tensor& loss, const std::vector<at::Tensor>& params, comm::Communicator* comm) {
  bool finite = std::isfinite(loss.item<double>());
  for (const auto& p : params) finite = finite && (!p.grad().defined() || p.grad().isfinite().all().item<bool>());
  at::Tensor bad = torch::tensor({finite ? 0.0 : 1.0}, torch::kDouble);
  if (comm) comm->all_reduce_sum(bad);
  return static_cast<int>(bad.item<double>());
}

}  // namespace excel::train
