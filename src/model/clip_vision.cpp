#include "excel/model/clip_vision.h"

#include <torch/torch.h>

#include <cmath>
#include <optional>

#include "batched_matmul.h"
#include "excel/common/errors.h"
#include "excel/model/placement.h"

namespace excel::model {

namespace F = torch::nn::functional;

namespace {

at::Tensor interpolate_table(const at::Tensor& table, int64_t side, int64_t gh, int64_t gw) {
  const int64_t w = table.size(1);
  at::Tensor grid = table.slice(0, 1).reshape({1, side, side, w}).permute({0, 3, 1, 2});
  grid = F::interpolate(
      grid, F::InterpolateFuncOptions().size(std::vector<int64_t>{gh, gw}).mode(torch::kBilinear).align_corners(false));
  grid = grid.permute({0, 2, 3, 1}).reshape({gh * gw, w});
  return torch::cat({table.slice(0, 0, 1), grid}, 0).contiguous();
}

}  // namespace

ClipVision::ClipVision(const ClipWeights& wt, int64_t train_grid) : cfg_(wt.config) {
  const std::string v = "visual.";
  conv_w_ = wt.get(v + "conv1.weight");
  class_emb_ = wt.get(v + "class_embedding");
  pos_ = wt.get(v + "positional_embedding");
  pos_side_ = cfg_.pos_grid;
  ln_pre_w_ = wt.get(v + "ln_pre.weight");
  ln_pre_b_ = wt.get(v + "ln_pre.bias");
  // The projection to the joint space runs in fp32 whatever the backbone's precision.
  ln_post_w_ = wt.get(v + "ln_post.weight").to(at::kFloat);
  ln_post_b_ = wt.get(v + "ln_post.bias").to(at::kFloat);
  proj_ = wt.get(v + "proj").to(at::kFloat);
  for (int64_t i = 0; i < cfg_.vision_layers; ++i) {
    const std::string p = v + "transformer.resblocks." + std::to_string(i) + ".";
    blocks_.push_back(BlockWeights::load(wt, p));
  }
  if (train_grid > 0 && train_grid != pos_side_) {
    torch::NoGradGuard ng;
    pos_ = interpolate_table(pos_, pos_side_, train_grid, train_grid);
    pos_side_ = train_grid;
  }
}

at::Tensor ClipVision::positional_table(int64_t gh, int64_t gw) const {
  if (gh == pos_side_ && gw == pos_side_) return pos_;
  auto key = std::make_pair(gh, gw);
  auto it = pos_cache_.find(key);
  if (it != pos_cache_.end()) return it->second;
  torch::NoGradGuard ng;
  at::Tensor t = interpolate_table(pos_, pos_side_, gh, gw);
  pos_cache_.emplace(key, t);
  return t;
}

at::Tensor project_surgery(const at::Tensor& surgery, const at::Tensor& ln_w, const at::Tensor& ln_b,
                           const at::Tensor& proj) {
  torch::NoGradGuard ng;
  at::Tensor f = torch::layer_norm(surgery, {surgery.size(-1)}, ln_w, ln_b, 1e-5);
  f = torch_kernels(f) ? torch::linear(f, proj.t()) : per_sample_linear(f, proj.t());
  return f / f.norm(2, {1}, /*keepdim=*/true);  // over tokens, no epsilon (quirks 5, 37: §12.5, §12.37)
}

at::Tensor ClipVision::project(const at::Tensor& surgery) const {
  return project_surgery(surgery, ln_post_w_, ln_post_b_, proj_);
}

at::Tensor ClipVision::embed_tokens(const at::Tensor& tokens) const {
  return torch::matmul(torch::layer_norm(tokens, {tokens.size(-1)}, ln_post_w_, ln_post_b_, 1e-5), proj_);
}

at::Tensor lvc_dynamic_features(const at::Tensor& surgery, const at::Tensor& u_patch, const at::Tensor& E,
                                int64_t heads, const at::Tensor& ln_w, const at::Tensor& ln_b, const at::Tensor& proj) {
  torch::NoGradGuard ng;
  at::Tensor s = surgery.contiguous().clone();
  s.slice(1, 1).add_(torch::matmul(E.contiguous(), u_patch.contiguous()), static_cast<double>(heads));
  return project_surgery(s, ln_w, ln_b, proj);
}

at::Tensor ClipVision::dynamic_features(const at::Tensor& surgery, const at::Tensor& U, const at::Tensor& E) const {
  if (!U.defined()) throw InputError("dynamic_features needs the plain pass's value projection (keep_value_proj)");
  return lvc_dynamic_features(surgery, U.slice(1, 1), E, cfg_.vision_heads, ln_post_w_, ln_post_b_, proj_);
}

VisionOutputs ClipVision::forward(const at::Tensor& x_in, const at::Tensor& extra_in, const VisionOptions& opt) const {
  const bool grad = opt.autograd;
  // The input in the weights' device and dtype (a no-op on the CPU in fp32); outputs are fp32.
  const at::Tensor x = x_in.to(conv_w_.device(), conv_w_.scalar_type());
  const at::Tensor extra = extra_in.defined() ? extra_in.to(conv_w_.device(), conv_w_.scalar_type()) : extra_in;
  // The plain torch ops (batched GEMMs): autograd, and the device path (CUDA, or forced on the
  // CPU by --model_kernels=torch). Otherwise the CPU path below.
  const bool plain = grad || torch_kernels(x);
  std::optional<torch::NoGradGuard> no_grad;
  if (!grad) no_grad.emplace();
  if (x.dim() != 4 || x.size(1) != 3 || x.size(2) % cfg_.patch || x.size(3) % cfg_.patch)
    throw InputError("vision input must be [B,3,H,W] with H, W multiples of " + std::to_string(cfg_.patch));
  const int64_t B = x.size(0), gh = x.size(2) / cfg_.patch, gw = x.size(3) / cfg_.patch;
  const int64_t P = gh * gw, N = P + 1, W = cfg_.vision_width, H = cfg_.vision_heads, D = W / H;
  const double scale = 1.0 / std::sqrt(static_cast<double>(D));
  const int64_t L = num_layers(), s0 = first_surgery_block();
  if (extra.defined() && (extra.dim() != 3 || extra.size(0) != B || extra.size(1) != P || extra.size(2) != P))
    throw InputError("extra attention must be [B,P,P] matching the input grid");

  // Every GEMM sees one sample's rows (attention maps per sample and head, linear layers through
  // per_sample_linear), and everything else is row-wise: a sample's outputs are the same bits in
  // any batch on the CPU (docs/numerics.md).
  // With autograd: torch::linear / matmul / softmax instead (out= kernels have no gradients).
  auto linear = [&](const at::Tensor& in, const at::Tensor& w, const at::Tensor& bias) {
    return plain ? torch::linear(in, w, bias) : per_sample_linear(in, w, bias);
  };
  auto mm = [&](const at::Tensor& a, const at::Tensor& b, at::Tensor* workspace = nullptr) {
    return plain ? torch::matmul(a, b) : batched_mm(a, b, workspace);
  };
  auto mlp = [&](const at::Tensor& in, const Block& b) {
    return quick_gelu_mlp(in, b.fc_w, b.fc_b, b.proj_w, b.proj_b, /*per_sample=*/!plain);
  };
  at::Tensor patches;
  if (!plain && B > 1) {
    std::vector<at::Tensor> per;
    for (int64_t i = 0; i < B; ++i) per.push_back(torch::conv2d(x.narrow(0, i, 1), conv_w_, {}, cfg_.patch));
    patches = torch::cat(per, 0);
  } else {
    patches = torch::conv2d(x, conv_w_, {}, cfg_.patch);
  }
  at::Tensor t = patches.flatten(2).transpose(1, 2);
  const bool stored_grid = gh == pos_side_ && gw == pos_side_;
  at::Tensor pos = grad && !stored_grid ? interpolate_table(pos_, pos_side_, gh, gw) : positional_table(gh, gw);
  t = torch::cat({class_emb_.view({1, 1, W}).expand({B, 1, W}), t}, 1) + pos;
  at::Tensor X = torch::layer_norm(t, {W}, ln_pre_w_, ln_pre_b_, 1e-5);

  std::vector<at::Tensor> attn(static_cast<size_t>(L)), feats(static_cast<size_t>(L));
  auto heads = [&](const at::Tensor& qkv) {  // [B,N,3W] -> [3,B,H,N,D]
    return qkv.view({B, N, 3, H, D}).permute({2, 0, 3, 1, 4});
  };

  const int64_t map_elems = B * H * N * N;
  if (!plain && (!ws_maps_.defined() || ws_maps_.numel() < 4 * map_elems)) {
    ws_maps_ = torch::empty({4 * map_elems}, x.options());
    ws_sur_ = torch::empty({map_elems}, x.options());
  }
  auto softmax_inplace = [&](at::Tensor t) {  // row-wise: each element is read before it is written
    if (plain) return torch::softmax(t, -1);
    at::_softmax_out(t, t, -1, false);
    return t;
  };
  for (int64_t l = 0; l < s0; ++l) {
    const Block& b = blocks_[static_cast<size_t>(l)];
    at::Tensor qkv = heads(linear(torch::layer_norm(X, {W}, b.ln1_w, b.ln1_b, 1e-5), b.in_w, b.in_b));
    at::Tensor a = softmax_inplace(mm(qkv[0] * scale, qkv[1].transpose(-1, -2), &ws_maps_));
    at::Tensor o = mm(a, qkv[2]).transpose(1, 2).reshape({B, N, W});
    X = X + linear(o, b.out_w, b.out_b);
    X = X + mlp(torch::layer_norm(X, {W}, b.ln2_w, b.ln2_b, 1e-5), b);
    if (opt.keep_attn) attn[static_cast<size_t>(l)] = a.mean(1);
    if (opt.keep_feats) feats[static_cast<size_t>(l)] = X;
  }

  at::Tensor S = X, O = X, U;
  for (int64_t l = s0; l < L; ++l) {
    const Block& b = blocks_[static_cast<size_t>(l)];
    at::Tensor qkv_flat = linear(torch::layer_norm(O, {W}, b.ln1_w, b.ln1_b, 1e-5), b.in_w, b.in_b);
    at::Tensor qkv = heads(qkv_flat);
    at::Tensor q = qkv[0], k = qkv[1], v = qkv[2];
    // One batched product and one softmax for the original map and the three intra-correlations.
    at::Tensor lhs = torch::stack({q, q, k, v}) * scale;
    at::Tensor rhs = torch::stack({k, q, k, v}).transpose(-1, -2);
    at::Tensor sm = softmax_inplace(mm(lhs, rhs, &ws_maps_));  // [4,B,H,N,N]
    at::Tensor ori = sm[0];
    at::Tensor sur;  // [B,H,N,N]
    if (plain) {
      sur = (sm[1] + sm[2] + sm[3]) / 3.0;
    } else {
      sur = ws_sur_.narrow(0, 0, map_elems).view({B, H, N, N});
      at::add_out(sur, sm[1], sm[2]).add_(sm[3]).div_(3.0);
    }
    if (extra.defined()) sur.slice(2, 1).slice(3, 1).add_(extra.unsqueeze(1));
    at::Tensor abar = sur.sum(1);  // head sum (quirk 4, §12.4)
    at::Tensor v_full = qkv_flat.slice(2, 2 * W, 3 * W);
    at::Tensor r_sur = linear(mm(abar, v_full), b.out_w, b.out_b);
    at::Tensor r_ori = linear(mm(ori, v).transpose(1, 2).reshape({B, N, W}), b.out_w, b.out_b);
    at::Tensor M = O + r_ori;
    if (opt.keep_feats && l > s0) feats[static_cast<size_t>(l - 1)] = M;  // aliasing, §1.8 (quirk 2, §12.2)
    O = M + mlp(torch::layer_norm(M, {W}, b.ln2_w, b.ln2_b, 1e-5), b);
    S = S + r_sur;
    if (opt.keep_attn) attn[static_cast<size_t>(l)] = ori.sum(1);
    if (opt.keep_value_proj) {
      at::Tensor u = linear(v_full, b.out_w, at::Tensor());
      U = U.defined() ? U + u : u;
    }
  }
  S = S.clone();
  S.select(1, 0).copy_(O.select(1, 0));

  VisionOutputs out;
  auto fp32 = [](const at::Tensor& t) { return t.scalar_type() == at::kFloat ? t : t.to(at::kFloat); };
  out.surgery = fp32(S);
  if (!grad) out.features = project(out.surgery);
  if (opt.keep_feats) {
    feats[static_cast<size_t>(s0 - 1)] = S;
    feats[static_cast<size_t>(L - 1)] = O;
    out.feats_all = fp32(torch::stack(feats));
  }
  if (opt.keep_attn) out.attn_all = fp32(torch::stack(attn));
  if (opt.keep_value_proj) out.value_proj = fp32(U);
  return out;
}

}  // namespace excel::model
