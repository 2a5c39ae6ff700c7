// eval/picture_strip (src/eval/picture_strip.cpp): panels side by side with white separators in
// order, unequal heights refused, and the CAM shown is the present class with the largest mean.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <vector>

#include "excel/common/errors.h"
#include "excel/eval/picture_strip.h"

namespace excel {
namespace {

TEST(PictureStripTest, PanelsInOrderWithSeparators) {
  const at::Tensor a = torch::full({5, 3, 3}, 10, torch::kByte), b = torch::full({5, 4, 3}, 20, torch::kByte);
  const at::Tensor c = torch::full({5, 2, 3}, 30, torch::kByte);
  const at::Tensor s = eval::picture_strip({a, b, c}, 2);
  ASSERT_EQ(s.sizes(), (std::vector<int64_t>{5, 3 + 2 + 4 + 2 + 2, 3}));
  EXPECT_TRUE(torch::equal(s.slice(1, 0, 3), a));
  EXPECT_TRUE((s.slice(1, 3, 5) == 255).all().item<bool>());
  EXPECT_TRUE(torch::equal(s.slice(1, 5, 9), b));
  EXPECT_TRUE((s.slice(1, 9, 11) == 255).all().item<bool>());
  EXPECT_TRUE(torch::equal(s.slice(1, 11, 13), c));
  EXPECT_TRUE(torch::equal(eval::picture_strip({a}), a));
}

TEST(PictureStripTest, PanelsOfAnotherHeightAreRefused) {
  const at::Tensor a = torch::zeros({5, 3, 3}, torch::kByte), b = torch::zeros({6, 3, 3}, torch::kByte);
  EXPECT_THROW(eval::picture_strip({a, b}), ConfigError);
  EXPECT_THROW(eval::picture_strip({}), ConfigError);
}

TEST(PictureStripTest, CamOfThePresentClassWithTheLargestMean) {
  at::Tensor maps = torch::zeros({4, 2, 2});
  maps[0].fill_(0.9);  // the largest, but not present
  maps[1].fill_(0.2);
  maps[3].fill_(0.5);
  EXPECT_EQ(eval::strip_cam_class(maps, {1, 3}), 3);
  EXPECT_EQ(eval::strip_cam_class(maps, {1}), 1);
  EXPECT_EQ(eval::strip_cam_class(maps, {}), -1);
}

}  // namespace
}  // namespace excel
