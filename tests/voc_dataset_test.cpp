// data/voc_dataset (src/data/voc_dataset.cpp): Pillow-compatible resizes, training augmentation
// as a function of (seed, sample, view), a missing image named. The data are made by
// data/synthetic_voc (tested in synthetic_voc_test.cpp).
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <filesystem>

#include "excel/common/errors.h"
#include "excel/data/synthetic_voc.h"
#include "excel/data/voc_dataset.h"
#include "test_util.h"

using namespace excel;

TEST(PillowResizeTest, two_to_one_downscale_uses_the_triangle_taps) {
  // Pillow bilinear at scale 2 has support 2: taps 1/8, 3/8, 3/8, 1/8 around each output pixel.
  at::Tensor row = torch::tensor({0, 80, 160, 240, 16, 48, 200, 100}, torch::kByte).view({1, 8, 1});
  at::Tensor out = data::pillow_resize_bilinear(row, 1, 4).view({4}).to(torch::kInt);
  auto ref = [](double a, double b, double c, double d) { return static_cast<int>(std::floor(a / 8 + 3 * b / 8 + 3 * c / 8 + d / 8 + 0.5)); };
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
  EXPECT_TRUE(torch::equal(data::pillow_resize_nearest(lab, 4, 6), lab.repeat_interleave(2, 0).repeat_interleave(2, 1)));
}

class VocDatasetTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = test::temp_dir("voc_dataset") + "/voc";
    summary_ = data::make_synthetic_voc({root_, 8, 96, 160, 0.25, 3});
  }
  std::string root_;
  data::SyntheticVocSummary summary_;
};

TEST_F(VocDatasetTest, augmentation_is_a_function_of_seed_sample_and_view) {
  data::VocDataset ds({root_, "train", "", "voc", 20});
  data::AugmentOptions aug;
  aug.crop = 64;
  auto a = ds.train_sample(2, 5, 0, aug), b = ds.train_sample(2, 5, 0, aug), c = ds.train_sample(2, 5, 1, aug);
  EXPECT_TRUE(torch::equal(a.image, b.image));
  EXPECT_FALSE(torch::equal(a.image, c.image));
  EXPECT_EQ(a.image.sizes(), at::IntArrayRef({3, 64, 64}));
  EXPECT_EQ(a.label.sizes(), at::IntArrayRef({64, 64}));
}

TEST_F(VocDatasetTest, missing_image_is_an_error_naming_the_file) {
  data::VocDataset ds({root_, "train", "", "voc", 20});
  std::filesystem::remove(ds.image_path(1));
  try {
    ds.train_sample(1, 0, 0, data::AugmentOptions());
    FAIL() << "no error";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find(ds.image_path(1)), std::string::npos) << e.what();
  }
  EXPECT_THROW(data::VocDataset({root_, "no_such_split", "", "voc", 20}), InputError);
}
