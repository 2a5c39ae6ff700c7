#include "excel/model/random_clip.h"

#include <torch/torch.h>

#include <cmath>

namespace excel::model {

ClipConfig vit_b16_config() {
  ClipConfig c;
  c.vision_width = 768;
  c.vision_layers = 12;
  c.vision_heads = 12;
  c.patch = 16;
  c.pos_grid = 14;
  c.embed_dim = 512;
  c.text_width = 512;
  c.text_layers = 12;
  c.text_heads = 8;
  c.context_length = 77;
  c.vocab_size = 49408;
  return c;
}

namespace {

void add_blocks(std::map<std::string, at::Tensor>& t, const std::string& prefix, int64_t n, int64_t w) {
  const double s = 1.0 / std::sqrt(static_cast<double>(w));
  for (int64_t i = 0; i < n; ++i) {
    const std::string p = prefix + std::to_string(i) + ".";
    t[p + "ln_1.weight"] = torch::ones({w}) + 0.05 * torch::randn({w});
    t[p + "ln_1.bias"] = 0.02 * torch::randn({w});
    t[p + "attn.in_proj_weight"] = s * torch::randn({3 * w, w});
    t[p + "attn.in_proj_bias"] = 0.02 * torch::randn({3 * w});
    t[p + "attn.out_proj.weight"] = s * torch::randn({w, w});
    t[p + "attn.out_proj.bias"] = 0.02 * torch::randn({w});
    t[p + "ln_2.weight"] = torch::ones({w}) + 0.05 * torch::randn({w});
    t[p + "ln_2.bias"] = 0.02 * torch::randn({w});
    t[p + "mlp.c_fc.weight"] = s * torch::randn({4 * w, w});
    t[p + "mlp.c_fc.bias"] = 0.02 * torch::randn({4 * w});
    t[p + "mlp.c_proj.weight"] = 0.5 * s * torch::randn({w, 4 * w});
    t[p + "mlp.c_proj.bias"] = 0.02 * torch::randn({w});
  }
}

}  // namespace

std::map<std::string, at::Tensor> random_clip_tensors(const ClipConfig& c, uint64_t seed, at::ScalarType dtype) {
  torch::NoGradGuard ng;
  torch::manual_seed(seed);
  std::map<std::string, at::Tensor> t;
  const int64_t w = c.vision_width, tw = c.text_width;
  t["visual.conv1.weight"] = torch::randn({w, 3, c.patch, c.patch}) / std::sqrt(3.0 * c.patch * c.patch);
  t["visual.class_embedding"] = torch::randn({w}) / std::sqrt(static_cast<double>(w));
  t["visual.positional_embedding"] = 0.1 * torch::randn({1 + c.pos_grid * c.pos_grid, w});
  t["visual.ln_pre.weight"] = torch::ones({w});
  t["visual.ln_pre.bias"] = torch::zeros({w});
  add_blocks(t, "visual.transformer.resblocks.", c.vision_layers, w);
  t["visual.ln_post.weight"] = torch::ones({w});
  t["visual.ln_post.bias"] = torch::zeros({w});
  t["visual.proj"] = torch::randn({w, c.embed_dim}) / std::sqrt(static_cast<double>(w));
  t["token_embedding.weight"] = 0.02 * torch::randn({c.vocab_size, tw});
  t["positional_embedding"] = 0.01 * torch::randn({c.context_length, tw});
  add_blocks(t, "transformer.resblocks.", c.text_layers, tw);
  t["ln_final.weight"] = torch::ones({tw});
  t["ln_final.bias"] = torch::zeros({tw});
  t["text_projection"] = torch::randn({tw, c.embed_dim}) / std::sqrt(static_cast<double>(tw));
  t["logit_scale"] = torch::full({}, std::log(1 / 0.07));
  for (auto& kv : t) kv.second = kv.second.to(dtype).contiguous();
  return t;
}

ClipWeights random_clip_weights(const ClipConfig& cfg, uint64_t seed) {
  ClipWeights w;
  w.source = "random(seed=" + std::to_string(seed) + ")";
  w.tensors = random_clip_tensors(cfg, seed, at::kFloat);
  w.config = infer_and_validate(w.tensors, w.source);
  return w;
}

}  // namespace excel::model
