#include <torch/torch.h>

#include <filesystem>

#include "excel/common/errors.h"
#include "excel/data/image_io.h"
#include "excel/data/synthetic_voc.h"
#include "excel/data/sampler.h"
#include "excel/data/voc_dataset.h"
#include "excel/model/pseudo_label.h"
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
  data::VocDataset ds({root_, "train", "", "voc", 20});
  data::VocDataset with_file({root_, "train", root_ + "/cls_labels.txt", "voc", 20});
  ASSERT_EQ(ds.size(), 6u);
  for (size_t i = 0; i < ds.size(); ++i) {
    EXPECT_TRUE(torch::equal(ds.class_labels(i), with_file.class_labels(i))) << ds.id(i);
    EXPECT_GE(ds.class_labels(i).sum().item<float>(), 1.0f);
    EXPECT_TRUE(torch::equal(data::read_rgb(ds.image_path(i)), data::read_rgb(again.train_ids.empty() ? "" : root_ + "2/JPEGImages/" + ds.id(i) + ".jpg")));
  }
}

TEST_F(SyntheticVocTest, augmentation_is_a_function_of_seed_sample_and_view) {
  data::VocDataset ds({root_, "train", "", "voc", 20});
  data::AugmentOptions aug;
  aug.crop = 64;
  auto a = ds.train_sample(2, 5, 0, aug), b = ds.train_sample(2, 5, 0, aug), c = ds.train_sample(2, 5, 1, aug);
  EXPECT_TRUE(torch::equal(a.image, b.image));
  EXPECT_FALSE(torch::equal(a.image, c.image));
  EXPECT_EQ(a.image.sizes(), at::IntArrayRef({3, 64, 64}));
  EXPECT_EQ(a.label.sizes(), at::IntArrayRef({64, 64}));
}

TEST_F(SyntheticVocTest, missing_image_is_an_error_naming_the_file) {
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

TEST(PseudoLabelTest, box_end_is_clamped_to_grid_minus_one_like_the_reference) {
  at::Tensor m = torch::zeros({6, 6});
  m.slice(0, 3, 6).slice(1, 4, 6).fill_(1.0);  // blob touching the bottom-right corner
  at::Tensor box = model::box_mask(m, 0.5);
  EXPECT_EQ(box.sum().item<float>(), 2.0f);      // rows 3..4, col 4 only: last row/column dropped
  EXPECT_EQ(box[3][4].item<float>(), 1.0f);
  EXPECT_EQ(box[5][5].item<float>(), 0.0f);
  EXPECT_EQ(model::box_mask(torch::zeros({6, 6}), 0.5).sum().item<float>(), 0.0f);
}

TEST(PseudoLabelTest, radius_mask_is_chebyshev_ball) {
  at::Tensor r = model::radius_mask(20, 20, 8);
  EXPECT_EQ(r[0].sum().item<int64_t>(), 81);               // corner: 9 x 9
  EXPECT_EQ(r[10 * 20 + 10].sum().item<int64_t>(), 17 * 17);  // centre: rows 2..18, cols 2..18
  EXPECT_TRUE(torch::equal(r, r.t()));
}

TEST(SamplerTest, ranks_split_each_global_batch_of_the_epoch_shuffle) {
  auto p0 = data::epoch_permutation(50, 3, 0), p1 = data::epoch_permutation(50, 3, 1);
  EXPECT_EQ(p0, data::epoch_permutation(50, 3, 0));  // same on every rank
  EXPECT_NE(p0, p1);                                  // reshuffled per epoch
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
