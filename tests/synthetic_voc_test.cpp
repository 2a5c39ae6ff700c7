// data/synthetic_voc (src/data/synthetic_voc.cpp): the synthetic VOC set is deterministic for a
// seed and its cls_labels.txt agrees with the class labels read from its masks.
#include <gtest/gtest.h>
#include <torch/torch.h>

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
