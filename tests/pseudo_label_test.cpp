// model/pseudo_label (src/model/pseudo_label.cpp): the contour box of a CAM and the radius mask
// of the local-visual-context term, with the reference's edge conventions.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "excel/model/pseudo_label.h"

using namespace excel;

TEST(PseudoLabelTest, box_end_is_clamped_to_grid_minus_one_like_the_reference) {
  at::Tensor m = torch::zeros({6, 6});
  m.slice(0, 3, 6).slice(1, 4, 6).fill_(1.0);  // blob touching the bottom-right corner
  at::Tensor box = model::box_mask(m, 0.5);
  EXPECT_EQ(box.sum().item<float>(), 2.0f);  // rows 3..4, col 4 only: last row/column dropped
  EXPECT_EQ(box[3][4].item<float>(), 1.0f);
  EXPECT_EQ(box[5][5].item<float>(), 0.0f);
  EXPECT_EQ(model::box_mask(torch::zeros({6, 6}), 0.5).sum().item<float>(), 0.0f);
}

TEST(PseudoLabelTest, radius_mask_is_chebyshev_ball) {
  at::Tensor r = model::radius_mask(20, 20, 8);
  EXPECT_EQ(r[0].sum().item<int64_t>(), 81);                  // corner: 9 x 9
  EXPECT_EQ(r[10 * 20 + 10].sum().item<int64_t>(), 17 * 17);  // centre: rows 2..18, cols 2..18
  EXPECT_TRUE(torch::equal(r, r.t()));
}
