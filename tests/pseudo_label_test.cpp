// model/pseudo_label (src/model/pseudo_label.cpp): the contour box of a CAM and the radius mask
// of the local-visual-context term, with the reference's edge conventions; the device path's
// ATen forms (boxes, batched refinement, resize) against the CPU path's OpenCV ones.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "excel/model/pseudo_label.h"
#include "test_util.h"

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

// The device path's boxes (ATen connected components) are OpenCV's contour boxes: random maps
// with several blobs, holes, nested blobs and blobs on every edge, and the threshold's edge cases.
TEST(PseudoLabelTest, device_boxes_equal_the_contour_boxes) {
  torch::manual_seed(3);
  std::vector<at::Tensor> maps;
  for (int i = 0; i < 40; ++i) {
    // Smoothed noise: blobs of every shape; squared to make some maps sparse.
    at::Tensor m = torch::avg_pool2d(torch::rand({1, 1, 24, 28}), 5, 1, 2)[0][0];
    m = (m - m.min()) / (m.max() - m.min());
    maps.push_back(i % 2 ? m : m.pow(3));
  }
  at::Tensor ring = torch::zeros({12, 12});
  ring.slice(0, 2, 10).slice(1, 2, 10).fill_(1);
  ring.slice(0, 4, 8).slice(1, 4, 8).fill_(0);
  ring[5][5] = 1;  // a blob inside the hole
  maps.push_back(ring);
  at::Tensor corners = torch::zeros({12, 12});
  corners[0][0] = corners[11][11] = corners[0][11] = corners[11][0] = 1;
  corners.slice(0, 5, 7).fill_(1);  // a full-width band
  maps.push_back(corners);
  maps.push_back(torch::zeros({12, 12}));
  maps.push_back(torch::full({12, 12}, 0.5));  // every cell at the maximum: nothing above tau x max
  for (double tau : {0.79, 0.75, 0.4}) {
    for (size_t i = 0; i < maps.size(); ++i) {
      const at::Tensor want = model::box_mask(maps[i], tau);
      const at::Tensor got = model::box_masks(maps[i].unsqueeze(0), tau)[0];
      EXPECT_TRUE(torch::equal(want, got)) << "map " << i << ", tau " << tau;
    }
  }
  // All maps of one size at once.
  at::Tensor batch = torch::stack(std::vector<at::Tensor>(maps.begin(), maps.begin() + 40));
  at::Tensor got = model::box_masks(batch, 0.79);
  for (int i = 0; i < 40; ++i) EXPECT_TRUE(torch::equal(model::box_mask(maps[i], 0.79), got[i])) << i;
}

// The device path of the refinement and of the background maps (batched classes, ATen resize)
// against the CPU path (per class, OpenCV resize).
TEST(PseudoLabelTest, device_path_refinement_and_background_match_the_cpu_path) {
  torch::manual_seed(4);
  const int64_t g = 10, C = 6;
  at::Tensor cam = torch::avg_pool2d(torch::rand({C, 1, g, g}), 3, 1, 1).reshape({C, g * g}).t().contiguous();
  at::Tensor A = torch::softmax(torch::randn({g * g, g * g}) * 2, -1);
  at::Tensor labels = torch::tensor({1.f, 0.f, 1.f, 1.f, 0.f, 1.f});
  model::RefinedCams cpu = model::refine_cams_with_matrix(cam, A, labels, 0.6, g, g);
  at::Tensor bg_cpu = model::cams_with_background(cpu.maps, 37, 45);
  test::ScopedKernels torch_path(Kernels::kTorch);
  model::RefinedCams dev = model::refine_cams_with_matrix(cam, A, labels, 0.6, g, g);
  EXPECT_EQ(cpu.classes, dev.classes);
  const double scale = cpu.maps.abs().max().item<double>();
  const double err = (cpu.maps - dev.maps).abs().max().item<double>() / scale;
  EXPECT_LE(err, 1e-5);
  const double bg_err = (bg_cpu - model::cams_with_background(cpu.maps, 37, 45)).abs().max().item<double>();
  EXPECT_LE(bg_err, 1e-5);
  test::report_equivalence("device path vs CPU path, refined CAMs (normalised)", err, 1e-5);
  test::report_equivalence("device path (ATen bilinear) vs CPU path (OpenCV), background maps", bg_err, 1e-5);
  EXPECT_EQ(model::cams_with_background(torch::zeros({0, g, g}), 7, 9).sum().item<float>(), 63.0f);
}
