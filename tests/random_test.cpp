// common/random (include/excel/common/random.h, header only): the streams are pinned, so data
// order, augmentation and synthetic images are the same on every platform and in every later
// version.
#include <gtest/gtest.h>

#include "excel/common/random.h"

using namespace excel;

TEST(RandomTest, splitmix64_matches_its_published_sequence) {
  // splitmix64 from state 0 (Vigna's reference implementation): the first outputs.
  SplitMix64 r(0);
  EXPECT_EQ(r.next(), 0xE220A8397B1DCDAFULL);
  EXPECT_EQ(r.next(), 0x6E789E6AA1B965F4ULL);
  EXPECT_EQ(r.next(), 0x06C45D188009454FULL);
}

TEST(RandomTest, draws_stay_in_range) {
  SplitMix64 r(42);
  for (int i = 0; i < 1000; ++i) {
    const double u = r.uniform();
    EXPECT_GE(u, 0.0);
    EXPECT_LT(u, 1.0);
    const int64_t b = r.below(7);
    EXPECT_GE(b, 0);
    EXPECT_LT(b, 7);
    const int g = r.range(-3, 3);
    EXPECT_GE(g, -3);
    EXPECT_LE(g, 3);
  }
  EXPECT_EQ(r.below(1), 0);
  EXPECT_NE(mix_seed(1, 2), mix_seed(2, 1));
}
