// data/sampler (src/data/sampler.cpp): the epoch shuffle, the step -> (epoch, batch) arithmetic
// and the split of a global batch over ranks.
#include <gtest/gtest.h>

#include <algorithm>
#include <vector>

#include "excel/common/errors.h"
#include "excel/data/sampler.h"

using namespace excel;

TEST(SamplerTest, ranks_split_each_global_batch_of_the_epoch_shuffle) {
  auto p0 = data::epoch_permutation(50, 3, 0), p1 = data::epoch_permutation(50, 3, 1);
  EXPECT_EQ(p0, data::epoch_permutation(50, 3, 0));  // same on every rank
  EXPECT_NE(p0, p1);                                 // reshuffled per epoch
  std::vector<int64_t> sorted = p0;
  std::sort(sorted.begin(), sorted.end());
  for (int64_t i = 0; i < 50; ++i) EXPECT_EQ(sorted[static_cast<size_t>(i)], i);
  // Global batch 8 = 4 per rank x 2 ranks: 6 batches per epoch (drop_last), step 7 is epoch 1 batch 1.
  auto pos = data::batch_position(7, 50, 8);
  EXPECT_EQ(pos.epoch, 1);
  EXPECT_EQ(pos.index, 1);
  auto r0 = data::rank_batch(p1, 1, 4, 2, 0), r1 = data::rank_batch(p1, 1, 4, 2, 1);
  auto whole = data::rank_batch(p1, 1, 8, 1, 0);  // one rank with the same global batch
  std::vector<int64_t> joined = r0;
  joined.insert(joined.end(), r1.begin(), r1.end());
  EXPECT_EQ(joined, whole);
  EXPECT_THROW(data::batch_position(0, 5, 8), ConfigError);
}
