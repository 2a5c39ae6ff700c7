// Data order as pure arithmetic (no MPI, no I/O): a per-epoch global shuffle seeded by
// (seed, epoch), cut into global batches of samples_per_rank x world, each split over ranks.
#pragma once
#include <cstdint>
#include <vector>

namespace excel::data {

// Permutation of [0, n) for an epoch; identical on every rank.
std::vector<int64_t> epoch_permutation(int64_t n, uint64_t seed, int64_t epoch);

struct BatchPosition {
  int64_t epoch = 0, index = 0;  // global step -> (epoch, batch within the epoch)
};
// drop_last: n / global_batch batches per epoch.
BatchPosition batch_position(int64_t step, int64_t n, int64_t global_batch);

// The samples rank `rank` of `world` processes at global step `step`.
std::vector<int64_t> rank_batch(const std::vector<int64_t>& permutation, int64_t batch_index, int64_t samples_per_rank,
                                int world, int rank);

}  // namespace excel::data
