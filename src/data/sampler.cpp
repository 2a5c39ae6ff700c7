#include "excel/data/sampler.h"

#include <torch/torch.h>

#include "excel/common/errors.h"
#include "excel/common/random.h"

namespace excel::data {

std::vector<int64_t> epoch_permutation(int64_t n, uint64_t seed, int64_t epoch) {
  auto g = at::detail::createCPUGenerator(mix_seed(seed, static_cast<uint64_t>(epoch)));
  at::Tensor p = torch::randperm(n, g, torch::kLong);
  return std::vector<int64_t>(p.data_ptr<int64_t>(), p.data_ptr<int64_t>() + n);
}

BatchPosition batch_position(int64_t step, int64_t n, int64_t global_batch) {
  const int64_t per_epoch = n / global_batch;
  if (per_epoch <= 0)
    throw ConfigError("data set of " + std::to_string(n) + " samples is smaller than the global batch " +
                      std::to_string(global_batch));
  return {step / per_epoch, step % per_epoch};
}

std::vector<int64_t> rank_batch(const std::vector<int64_t>& perm, int64_t batch_index, int64_t per_rank, int world,
                                int rank) {
  const int64_t start = (batch_index * world + rank) * per_rank;
  return std::vector<int64_t>(perm.begin() + start, perm.begin() + start + per_rank);
}

}  // namespace excel::data
