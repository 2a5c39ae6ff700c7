// model/clip_vision (src/model/clip_vision.cpp): properties of the surgery ViT that the feature
// cache relies on (docs/algorithm.md §11.2), and its device path against its CPU path.
#include <torch/torch.h>

#include "excel/model/clip_vision.h"
#include "excel/model/random_clip.h"
#include "test_util.h"

using namespace excel;

namespace {
model::ClipWeights small_weights() {
  model::ClipConfig c = model::vit_b16_config();
  c.vision_width = 128;
  c.vision_heads = 2;
  c.vision_layers = 12;
  c.text_width = 64;
  c.text_heads = 1;
  c.text_layers = 1;
  c.embed_dim = 32;
  return model::random_clip_weights(c, 5);
}
}  // namespace

TEST(ClipVisionTest, dynamic_pass_equals_static_surgery_plus_heads_times_E_U) {
  model::ClipWeights w = small_weights();
  model::ClipVision vit(w, 4);
  torch::manual_seed(1);
  at::Tensor x = torch::randn({2, 3, 64, 64});
  model::VisionOptions opt;
  opt.keep_value_proj = true;
  model::VisionOutputs plain = vit.forward(x, {}, opt);
  at::Tensor E = torch::softmax(torch::randn({2, 16, 16}) * 3, -1);
  model::VisionOutputs dyn = vit.forward(x, E);
  // S_dyn[1+i] = S[1+i] + heads * sum_j E[i,j] U[1+j]; row 0 unchanged.
  at::Tensor expect = plain.surgery.clone();
  expect.slice(1, 1) += 2.0 * torch::matmul(E, plain.value_proj.slice(1, 1));
  EXPECT_LT((dyn.surgery - expect).abs().max().item<double>(), 1e-3);
  EXPECT_LT((dyn.features - vit.project(expect)).abs().max().item<double>(), 1e-5);
  // The trainer's shortcut gives the dynamic pass's features without running it.
  EXPECT_LT((vit.dynamic_features(plain.surgery, plain.value_proj, E) - dyn.features).abs().max().item<double>(), 1e-5);
  // The original path (attention maps, feats entries other than the surgery one) is unchanged.
  EXPECT_TRUE(torch::allclose(dyn.attn_all, plain.attn_all));
  EXPECT_TRUE(torch::allclose(dyn.feats_all[11], plain.feats_all[11]));
  // feats_all entry 6 is the final surgery stack (aliasing, §1.8; quirk 2, §12.2).
  EXPECT_TRUE(torch::equal(plain.feats_all[6], plain.surgery));
}

TEST(ClipVisionTest, attention_rows_sum_to_one_then_to_heads) {
  model::ClipWeights w = small_weights();
  model::ClipVision vit(w);
  at::Tensor x = torch::randn({1, 3, 48, 48});
  at::Tensor rows = vit.forward(x).attn_all.sum(-1);  // [L,B,N]
  EXPECT_LT((rows.slice(0, 0, 7) - 1).abs().max().item<double>(), 1e-5);
  EXPECT_LT((rows.slice(0, 7) - 2).abs().max().item<double>(), 1e-5);  // head sum (2 heads)
}

TEST(ClipVisionTest, positional_table_is_identity_at_stored_grid_and_interpolated_otherwise) {
  model::ClipWeights w = small_weights();
  model::ClipVision vit(w);
  EXPECT_TRUE(torch::equal(vit.positional_table(14, 14), w.get("visual.positional_embedding")));
  at::Tensor t = vit.positional_table(20, 20);
  EXPECT_EQ(t.sizes(), at::IntArrayRef({401, 128}));
  EXPECT_TRUE(torch::equal(t[0], w.get("visual.positional_embedding")[0]));  // class row kept
  // "train" mode replaces the table once: the 20-grid table is then used as stored.
  model::ClipVision train_vit(w, 20);
  EXPECT_TRUE(torch::allclose(train_vit.positional_table(20, 20), t));
}

TEST(ClipVisionTest, rejects_inputs_that_are_not_patch_multiples) {
  model::ClipWeights w = small_weights();
  model::ClipVision vit(w);
  EXPECT_THROW(vit.forward(torch::randn({1, 3, 50, 48})), std::exception);
}

TEST(ClipVisionTest, autograd_mode_computes_the_same_tokens_and_reaches_every_weight) {
  model::ClipWeights w = small_weights();
  model::ClipVision vit(w);
  torch::manual_seed(2);
  at::Tensor x = torch::randn({2, 3, 64, 64});
  model::VisionOptions opt;
  opt.keep_value_proj = true;
  const model::VisionOutputs plain = vit.forward(x, {}, opt);
  for (auto& kv : w.tensors) kv.second.requires_grad_(true);
  opt.autograd = true;
  const model::VisionOutputs grad = vit.forward(x, {}, opt);
  EXPECT_LT((grad.surgery - plain.surgery).abs().max().item<double>(), 1e-4);
  EXPECT_LT((grad.attn_all - plain.attn_all).abs().max().item<double>(), 1e-5);
  EXPECT_LT((grad.value_proj - plain.value_proj).abs().max().item<double>(), 1e-4);
  EXPECT_FALSE(grad.features.defined());
  vit.embed_tokens(grad.surgery).sum().backward();
  for (const auto& kv : w.tensors) {
    if (kv.first.rfind("visual.", 0) == 0) {
      EXPECT_TRUE(kv.second.grad().defined()) << kv.first;
    }
  }
}

// The device path (batched torch GEMMs and softmax, no workspaces: what CUDA runs) forced on the
// CPU computes the CPU path's outputs, with and without LVC's extra attention.
TEST(ClipVisionTest, device_path_computes_the_cpu_paths_outputs) {
  model::ClipWeights w = small_weights();
  model::ClipVision vit(w, 4);
  torch::manual_seed(3);
  at::Tensor x = torch::randn({3, 3, 64, 64});
  at::Tensor E = torch::softmax(torch::randn({3, 16, 16}) * 3, -1);
  model::VisionOptions opt;
  opt.keep_value_proj = true;
  const model::VisionOutputs cpu = vit.forward(x, {}, opt), cpu_e = vit.forward(x, E);
  test::ScopedKernels torch_path(Kernels::kTorch);
  const model::VisionOutputs dev = vit.forward(x, {}, opt), dev_e = vit.forward(x, E);
  auto err = [](const at::Tensor& a, const at::Tensor& b) {
    return (a - b).abs().max().item<double>() / std::max(1.0, a.abs().max().item<double>());
  };
  double worst = 0;
  for (auto [a, b] : {std::pair{cpu.features, dev.features},
                      {cpu.attn_all, dev.attn_all},
                      {cpu.feats_all, dev.feats_all},
                      {cpu.surgery, dev.surgery},
                      {cpu.value_proj, dev.value_proj},
                      {cpu_e.features, dev_e.features}}) {
    ASSERT_EQ(a.sizes(), b.sizes());
    worst = std::max(worst, err(a, b));
  }
  EXPECT_LE(worst, 1e-5);
  test::report_equivalence("backbone device path vs CPU path (normalised)", worst, 1e-5);
}
