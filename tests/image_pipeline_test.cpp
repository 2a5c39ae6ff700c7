// eval/image_pipeline: the per-image inference shared by training validation, excel_eval and
// excel_cam_demo. What the three callers rely on when they take different routes through it.
#include <torch/torch.h>

#include "excel/eval/image_pipeline.h"
#include "excel/model/clip_vision.h"
#include "excel/model/heads.h"
#include "excel/model/pseudo_label.h"
#include "excel/model/random_clip.h"
#include "test_util.h"
#include "tiny_setup.h"

using namespace excel;

namespace {

struct Tiny {
  model::ClipWeights weights;
  model::ClipVision vision;
  model::Heads heads;
  at::Tensor text;
  static constexpr int64_t kClasses = 3, kCrop = 64;

  static model::HeadsConfig heads_config() {
    model::HeadsConfig h;
    h.in_width = 64;
    h.num_layers = 12;
    h.dim = 16;
    h.num_classes = kClasses + 1;
    return h;
  }
  Tiny()
      : weights(model::random_clip_weights(test::tiny_clip_config(), 11)), vision(weights), heads(heads_config(), 5) {
    torch::manual_seed(2);
    text = torch::randn({kClasses + 2, 16});
    text = text / text.norm(2, {1}, true);
  }
};

at::Tensor random_image(int64_t h, int64_t w, uint64_t seed) {
  torch::manual_seed(seed);
  return torch::randn({3, h, w});
}

}  // namespace

// excel_cam_demo runs static CAMs over batches, excel_eval one image at a time: on the CPU every
// backbone GEMM sees one sample's rows (docs/numerics.md), so both routes give the same bits.
TEST(ImagePipelineTest, batched_static_cams_equal_one_image_at_a_time) {
  Tiny t;
  const eval::ImagePipeline p(t.vision, t.text, Tiny::kClasses, Tiny::kCrop);
  const at::Tensor a = random_image(80, 96, 1), b = random_image(64, 50, 2);
  const at::Tensor batched = p.static_cams(torch::cat({p.network_input(a), p.network_input(b)}));
  ASSERT_EQ(batched.sizes(), (std::vector<int64_t>{2, 16, Tiny::kClasses}));
  const double da = (batched[0] - p.cams(a, eval::CamKind::kStatic).cam).abs().max().item<double>();
  const double db = (batched[1] - p.cams(b, eval::CamKind::kStatic).cam).abs().max().item<double>();
  test::report_equivalence("static CAMs, batch of 2 vs one image", std::max(da, db), 0);
  EXPECT_EQ(da, 0);
  EXPECT_EQ(db, 0);
}

// Without heads there is no affinity G (training-free mode); with heads, the static pass carries
// their G and logits from the same backbone pass (training validation), and the CAMs do not change.
TEST(ImagePipelineTest, static_pass_takes_affinity_and_logits_from_the_heads_when_given) {
  Tiny t;
  const eval::ImagePipeline plain(t.vision, t.text, Tiny::kClasses, Tiny::kCrop);
  const eval::ImagePipeline with_heads(t.vision, t.text, Tiny::kClasses, Tiny::kCrop, &t.heads);
  const at::Tensor img = random_image(70, 90, 3);
  const eval::ImageCams a = plain.cams(img, eval::CamKind::kStatic);
  const eval::ImageCams b = with_heads.cams(img, eval::CamKind::kStatic);
  EXPECT_FALSE(a.affinity.defined());
  ASSERT_TRUE(b.affinity.defined());
  EXPECT_EQ(b.affinity.sizes(), (std::vector<int64_t>{16, 16}));
  EXPECT_EQ(b.logits.sizes(), (std::vector<int64_t>{1, Tiny::kClasses + 1, 4, 4}));
  EXPECT_TRUE(torch::equal(a.cam, b.cam));
  EXPECT_EQ(a.attn.sizes(), (std::vector<int64_t>{12, 17, 17}));
  // The pseudo-label follows the gated refinement: same shape as the image, keys in 0..K-1.
  const at::Tensor cls = torch::tensor({1.f, 0.f, 1.f});
  const at::Tensor pl =
      with_heads.pseudo_label(b, with_heads.refine(b, cls, 0.5), torch::zeros({70, 90, 3}, torch::kByte));
  EXPECT_EQ(pl.sizes(), (std::vector<int64_t>{70, 90}));
  const at::Tensor present = std::get<0>(at::_unique(pl));
  for (int64_t k = 0; k < present.size(0); ++k) {
    const int64_t v = present[k].item<int64_t>();
    EXPECT_TRUE(v == 0 || v == 1 || v == 3) << v;  // background, or a present class + 1
  }
}

// Dynamic CAMs fuse x with flip(x) (§4.8): the image's flip must give the flipped map. A pass that
// fused the wrong view, or forgot to flip back, breaks this. The network input equals the image
// (side = crop, so the resize is exact); the only rounding that differs is the order of the
// batch-mean sum inside E, which moves the maps by a few float ulps.
TEST(ImagePipelineTest, dynamic_cams_of_the_flipped_image_are_the_flipped_cams) {
  Tiny t;
  const eval::ImagePipeline p(t.vision, t.text, Tiny::kClasses, Tiny::kCrop, &t.heads);
  const at::Tensor img = random_image(Tiny::kCrop, Tiny::kCrop, 4);
  const eval::ImageCams a = p.cams(img, eval::CamKind::kDynamic);
  const eval::ImageCams b = p.cams(img.flip({2}), eval::CamKind::kDynamic);
  ASSERT_EQ(a.cam.sizes(), (std::vector<int64_t>{16, Tiny::kClasses}));
  EXPECT_EQ(a.logits.size(0), 2);  // [x; flip(x)], reused by multi-scale inference
  const at::Tensor fa = a.cam.view({4, 4, Tiny::kClasses}).flip({1}).reshape({16, Tiny::kClasses});
  const double d = (fa - b.cam).abs().max().item<double>();
  // Each map is min-max normalised to [0, 1]; 1e-5 is ~100 ulps of 1.
  test::report_equivalence("dynamic CAM of flip(image) vs flip of dynamic CAM", d, 1e-5);
  EXPECT_LE(d, 1e-5);
  EXPECT_NEAR(a.cam.max().item<double>(), 1.0, 1e-4);
  EXPECT_GE(a.cam.min().item<double>(), 0.0);
}
