// data/pillow_resize (src/data/pillow_resize.cpp): Pillow's fixed-point bilinear taps and nearest.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>

#include "excel/data/pillow_resize.h"

using namespace excel;

TEST(PillowResizeTest, two_to_one_downscale_uses_the_triangle_taps) {
  // Pillow bilinear at scale 2 has support 2: taps 1/8, 3/8, 3/8, 1/8 around each output pixel.
  at::Tensor row = torch::tensor({0, 80, 160, 240, 16, 48, 200, 100}, torch::kByte).view({1, 8, 1});
  at::Tensor out = data::pillow_resize_bilinear(row, 1, 4).view({4}).to(torch::kInt);
  auto ref = [](double a, double b, double c, double d) {
    return static_cast<int>(std::floor(a / 8 + 3 * b / 8 + 3 * c / 8 + d / 8 + 0.5));
  };
  // Edge outputs renormalise the taps that fall inside the row.
  EXPECT_EQ(out[1].item<int>(), ref(80, 160, 240, 16));
  EXPECT_EQ(out[2].item<int>(), ref(240, 16, 48, 200));
  EXPECT_EQ(out[0].item<int>(), static_cast<int>(std::floor((3 * 0 + 3 * 80 + 160) / 7.0 + 0.5)));
}

TEST(PillowResizeTest, same_size_is_identity_and_constant_stays_constant) {
  at::Tensor img = torch::randint(0, 256, {17, 23, 3}).to(torch::kByte);
  EXPECT_TRUE(torch::equal(data::pillow_resize_bilinear(img, 17, 23), img));
  at::Tensor flat = torch::full({30, 40, 3}, 77, torch::kByte);
  EXPECT_TRUE(torch::equal(data::pillow_resize_bilinear(flat, 61, 13), torch::full({61, 13, 3}, 77, torch::kByte)));
  at::Tensor lab = torch::arange(6).view({2, 3}).to(torch::kByte);
  EXPECT_TRUE(
      torch::equal(data::pillow_resize_nearest(lab, 4, 6), lab.repeat_interleave(2, 0).repeat_interleave(2, 1)));
}
