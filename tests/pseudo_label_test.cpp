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

// §4.1: the refinement's affinity is the mean of the last six attention maps, class token
// dropped. Each layer's map here holds its own index, so any other choice of layers (the first
// six, the first or last block only, all of them) gives another value. The tiny CLIP's
// regression test cannot see this miswiring (docs/tiny_clip.md): its first block's attention is
// the better affinity on the synthetic world.
TEST(PseudoLabelTest, affinity_is_the_mean_of_the_last_six_attention_maps) {
  const int64_t N = 5, P = N - 1;
  for (int64_t L : {6, 8, 12}) {
    std::vector<at::Tensor> maps;
    for (int64_t l = 0; l < L; ++l) maps.push_back(torch::full({N, N}, static_cast<double>(l + 1)));
    maps.back()[0].fill_(100.0);  // the class token's row and column are dropped
    maps.back().select(1, 0).fill_(100.0);
    const at::Tensor attn = torch::stack(maps);
    const double want = static_cast<double>(L) - 2.5;  // mean of L-5 .. L
    const at::Tensor A = model::aggregate_attention(attn);
    ASSERT_EQ(A.sizes(), (std::vector<int64_t>{P, P})) << L;
    EXPECT_TRUE(torch::allclose(A, torch::full({P, P}, want))) << L << ": " << A[0][0].item<double>();
    const model::AttentionAggregates agg = model::attention_aggregates(attn);
    EXPECT_TRUE(torch::allclose(agg.mean, A)) << L;
    // The cache's selection keeps the maps of at least the mean mass: the last three of six.
    EXPECT_TRUE(torch::allclose(agg.selected, torch::full({P, P}, static_cast<double>(L) - 1.0))) << L;
    // With G, the gated selection keeps the maps whose summed difference G - W is at most the
    // mean (here the heavier half again) and multiplies by G.
    const at::Tensor G = torch::full({P, P}, 2.0);
    EXPECT_TRUE(torch::allclose(model::aggregate_attention(attn, G), torch::full({P, P}, 2.0 * (L - 1.0))))
        << L << ": " << model::aggregate_attention(attn, G)[0][0].item<double>();
  }
}
