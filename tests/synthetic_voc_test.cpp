// data/synthetic_voc (src/data/synthetic_voc.cpp): the synthetic VOC set is deterministic for a
// seed and its cls_labels.txt agrees with the class labels read from its masks.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <algorithm>

#include "excel/common/errors.h"
#include "excel/data/image_io.h"
#include "excel/data/synthetic_voc.h"
#include "excel/data/voc_layout_dataset.h"
#include "test_util.h"

using namespace excel;

class SyntheticVocTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = test::temp_dir("synth") + "/voc";
    summary_ = data::make_synthetic_voc({root_, 8, 96, 160, 0.25, 3});
  }
  std::string root_;
  data::SyntheticVocSummary summary_;
};

TEST_F(SyntheticVocTest, is_deterministic_and_labels_match_masks) {
  auto again = data::make_synthetic_voc({root_ + "2", 8, 96, 160, 0.25, 3});
  EXPECT_EQ(summary_.labels, again.labels);
  data::VocLayoutDataset ds({root_, "train", "", "voc", 20});
  data::VocLayoutDataset with_file({root_, "train", root_ + "/cls_labels.txt", "voc", 20});
  ASSERT_EQ(ds.size(), 6u);
  for (size_t i = 0; i < ds.size(); ++i) {
    EXPECT_TRUE(torch::equal(ds.class_labels(i), with_file.class_labels(i))) << ds.id(i);
    EXPECT_GE(ds.class_labels(i).sum().item<float>(), 1.0f);
    EXPECT_TRUE(
        torch::equal(data::read_rgb(ds.image_path(i)),
                     data::read_rgb(again.train_ids.empty() ? "" : root_ + "2/JPEGImages/" + ds.id(i) + ".jpg")));
  }
}

// --data_style=large: at most 2 objects, each covering more of the image than in "small"; an
// unknown style name is a ConfigError.
TEST(SyntheticStyleTest, large_has_fewer_and_larger_objects) {
  const data::SyntheticStyle large = data::synthetic_style("large");
  double cover[2] = {0, 0};
  int most[2] = {0, 0};
  for (int i = 0; i < 64; ++i) {
    for (int k = 0; k < 2; ++k) {
      const auto im = data::draw_synthetic_image(7, i, 128, 128, 0, k ? large : data::SyntheticStyle{});
      int fg = 0;
      for (uint8_t m : im.mask) fg += m != 0;
      cover[k] += static_cast<double>(fg) / static_cast<double>(im.mask.size() * im.classes.size()) / 64;
      most[k] = std::max(most[k], static_cast<int>(im.classes.size()));
    }
  }
  EXPECT_EQ(most[0], 3);
  EXPECT_LE(most[1], 2);
  EXPECT_GT(cover[1], 1.5 * cover[0]) << "fraction of the image per object: small " << cover[0] << ", large "
                                      << cover[1];
  EXPECT_EQ(data::synthetic_style("small").max_objects, 3);
  EXPECT_THROW(data::synthetic_style("huge"), ConfigError);
}
