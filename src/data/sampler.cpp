#include "excel/data/sampler.h"

#include <torch/torch.h>

#include "excel/common/errors.h"

namespace excel::data {

uint64_t mix_seed(uint64_t a, uint64_t b) {
  uint64_t z = a * 0x9E3779B97F4A7C15ULL + b + 0x632BE59BD9B4E019ULL;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

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
