// data/voc_layout_dataset (src/data/voc_layout_dataset.cpp): training augmentation as a function of (seed, sample,
// view), a missing image named. The data are made by data/synthetic_voc (tested in synthetic_voc_test.cpp).
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <filesystem>

#include "excel/common/errors.h"
#include "excel/data/synthetic_voc.h"
#include "excel/data/voc_layout_dataset.h"
#include "test_util.h"

using namespace excel;

class VocLayoutDatasetTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = test::temp_dir("voc_dataset") + "/voc";
    summary_ = data::make_synthetic_voc({root_, 8, 96, 160, 0.25, 3});
  }
  std::string root_;
  data::SyntheticVocSummary summary_;
};

TEST_F(VocLayoutDatasetTest, augmentation_is_a_function_of_seed_sample_and_view) {
  data::VocLayoutDataset ds({root_, "train", "", "voc", 20});
  data::AugmentOptions aug;
  aug.crop = 64;
  auto a = ds.train_sample(2, 5, 0, aug), b = ds.train_sample(2, 5, 0, aug), c = ds.train_sample(2, 5, 1, aug);
  EXPECT_TRUE(torch::equal(a.image, b.image));
  EXPECT_FALSE(torch::equal(a.image, c.image));
  EXPECT_EQ(a.image.sizes(), at::IntArrayRef({3, 64, 64}));
  EXPECT_EQ(a.label.sizes(), at::IntArrayRef({64, 64}));
}

TEST_F(VocLayoutDatasetTest, missing_image_is_an_error_naming_the_file) {
  data::VocLayoutDataset ds({root_, "train", "", "voc", 20});
  std::filesystem::remove(ds.image_path(1));
  try {
    ds.train_sample(1, 0, 0, data::AugmentOptions());
    FAIL() << "no error";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find(ds.image_path(1)), std::string::npos) << e.what();
  }
  EXPECT_THROW(data::VocLayoutDataset({root_, "no_such_split", "", "voc", 20}), InputError);
}
