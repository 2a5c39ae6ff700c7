#include "excel/model/heads.h"

#include <torch/torch.h>

#include <cmath>

#include "excel/comm/communicator.h"
#include "excel/common/errors.h"
#include "excel/common/shape.h"
#include "excel/model/block_weights.h"

namespace excel::model {

namespace {

at::Tensor uniform(std::vector<int64_t> shape, double bound, torch::Generator& g) {
  return torch::rand(shape, g) * (2 * bound) - bound;
}

// Cosine similarities of the channel-normalised features, [B,P,P].
at::Tensor cosine(const at::Tensor& f) {
  at::Tensor x = f.flatten(2);  // [B,C,P]
  x = x / x.norm(2, {1}, true).clamp_min(1e-12);
  return torch::matmul(x.transpose(1, 2), x);
}

}  // namespace

void Heads::add(const std::string& name, at::Tensor t) {
  names_.push_back(name);
  params_[name] = t.set_requires_grad(true);
}

Heads::Heads(const HeadsConfig& cfg, uint64_t seed) : cfg_(cfg) {
  torch::NoGradGuard ng;
  auto g = at::detail::createCPUGenerator(seed);
  const int64_t D = cfg.dim, W = cfg.in_width;
  auto linear = [&](const std::string& p, int64_t out, int64_t in) {
    const double b = 1.0 / std::sqrt(static_cast<double>(in));
    add(p + ".weight", uniform({out, in}, b, g));
    add(p + ".bias", uniform({out}, b, g));
  };
  auto conv1x1 = [&](const std::string& p, int64_t out, int64_t in) {
    const double b = 1.0 / std::sqrt(static_cast<double>(in));
    add(p + ".weight", uniform({out, in, 1, 1}, b, g));
    add(p + ".bias", uniform({out}, b, g));
  };
  for (int64_t l = 0; l < cfg.num_layers; ++l) {
    const std::string p = "decoder_fts_fuse.linears_modulelist." + std::to_string(l);
    linear(p + ".proj", D, W);
    linear(p + ".proj_2", D, D);
  }
  conv1x1("decoder_fts_fuse.linear_fuse", D, D * cfg.num_layers);
  for (int64_t i = 0; i < cfg.decoder_layers; ++i) {
    const std::string p = "decoder.transformer.resblocks." + std::to_string(i);
    add(p + ".attn.in_proj_weight", uniform({3 * D, D}, std::sqrt(6.0 / static_cast<double>(D + 3 * D)), g));
    add(p + ".attn.in_proj_bias", torch::zeros({3 * D}));
    add(p + ".attn.out_proj.weight", uniform({D, D}, 1.0 / std::sqrt(static_cast<double>(D)), g));
    add(p + ".attn.out_proj.bias", torch::zeros({D}));
    add(p + ".ln_1.weight", torch::ones({D}));
    add(p + ".ln_1.bias", torch::zeros({D}));
    linear(p + ".mlp.c_fc", 4 * D, D);
    linear(p + ".mlp.c_proj", D, 4 * D);
    add(p + ".ln_2.weight", torch::ones({D}));
    add(p + ".ln_2.bias", torch::zeros({D}));
  }
  conv1x1("decoder.linear_pred", cfg.num_classes, D);
}

at::Tensor& Heads::param(const std::string& name) {
  auto it = params_.find(name);
  if (it == params_.end()) throw FormatError("heads have no parameter '" + name + "'");
  return it->second;
}

const at::Tensor& Heads::param(const std::string& name) const {
  return const_cast<Heads*>(this)->param(name);
}

std::vector<at::Tensor> Heads::parameters() const {
  std::vector<at::Tensor> out;
  for (const auto& n : names_) out.push_back(params_.at(n));
  return out;
}

int64_t Heads::num_parameters() const {
  int64_t n = 0;
  for (const auto& kv : params_) n += kv.second.numel();
  return n;
}

void Heads::to(at::Device device) {
  torch::NoGradGuard ng;
  for (auto& kv : params_) kv.second = kv.second.to(device).set_requires_grad(true);
}

void Heads::load(const std::map<std::string, at::Tensor>& tensors, const std::string& source) {
  std::map<std::string, at::Tensor> stripped;
  for (const auto& kv : tensors)
    stripped[kv.first.rfind("module.", 0) == 0 ? kv.first.substr(7) : kv.first] = kv.second;
  torch::NoGradGuard ng;
  for (const auto& n : names_) {
    auto it = stripped.find(n);
    if (it == stripped.end()) throw FormatError(source + ": missing tensor '" + n + "'");
    at::Tensor& p = params_.at(n);
    if (it->second.sizes() != p.sizes())
      throw FormatError(source + ": tensor '" + n + "' has shape " + shape_str(it->second.sizes()) + ", expected " +
                        shape_str(p.sizes()));
    p.copy_(it->second.to(torch::kFloat));
  }
}

HeadsOutput Heads::forward(const at::Tensor& feats, bool train, const at::Tensor& dropout_scale, int64_t gh, int64_t gw,
                           bool patch_rows_only) const {
  const int64_t first = patch_rows_only ? 0 : 1;
  const int64_t L = feats.size(0), B = feats.size(1), P = feats.size(2) - first, D = cfg_.dim;
  if (L != cfg_.num_layers)
    throw InputError("adapter expects " + std::to_string(cfg_.num_layers) + " feature entries, got " +
                     std::to_string(L));
  if (gh == 0) gh = gw = static_cast<int64_t>(std::llround(std::sqrt(static_cast<double>(P))));
  if (gh * gw != P)
    throw InputError("feature grid " + std::to_string(gh) + "x" + std::to_string(gw) + " does not match " +
                     std::to_string(P) + " tokens");
  auto p = [&](const std::string& n) -> const at::Tensor& { return params_.at(n); };

  std::vector<at::Tensor> parts;
  for (int64_t l = 0; l < L; ++l) {
    const std::string pre = "decoder_fts_fuse.linears_modulelist." + std::to_string(l);
    at::Tensor x = feats[l].slice(1, first);  // [B,P,W]
    x = torch::linear(torch::relu(torch::linear(x, p(pre + ".proj.weight"), p(pre + ".proj.bias"))),
                      p(pre + ".proj_2.weight"), p(pre + ".proj_2.bias"));
    parts.push_back(x.transpose(1, 2).reshape({B, D, gh, gw}));
  }
  at::Tensor f = torch::conv2d(torch::cat(parts, 1), p("decoder_fts_fuse.linear_fuse.weight"),
                               p("decoder_fts_fuse.linear_fuse.bias"));
  if (dropout_scale.defined()) {
    f = f * dropout_scale.view({B, D, 1, 1});
  } else if (train && cfg_.dropout > 0) {
    at::Tensor keep = torch::bernoulli(torch::full({B, D, 1, 1}, 1.0 - cfg_.dropout, f.options()));
    f = f * keep / (1.0 - cfg_.dropout);
  }

  const int64_t Hh = cfg_.decoder_heads, Dh = D / Hh;
  at::Tensor x = f.flatten(2).permute({2, 0, 1});  // [P,B,D]
  for (int64_t i = 0; i < cfg_.decoder_layers; ++i) {
    const std::string pre = "decoder.transformer.resblocks." + std::to_string(i);
    at::Tensor y = torch::layer_norm(x, {D}, p(pre + ".ln_1.weight"), p(pre + ".ln_1.bias"), 1e-5);
    at::Tensor qkv = torch::linear(y, p(pre + ".attn.in_proj_weight"), p(pre + ".attn.in_proj_bias"));
    qkv = qkv.view({P, B, 3, Hh, Dh}).permute({2, 1, 3, 0, 4});  // [3,B,Hh,P,Dh]
    at::Tensor a =
        torch::softmax(torch::matmul(qkv[0] / std::sqrt(static_cast<double>(Dh)), qkv[1].transpose(-1, -2)), -1);
    at::Tensor o = torch::matmul(a, qkv[2]).permute({2, 0, 1, 3}).reshape({P, B, D});
    x = x + torch::linear(o, p(pre + ".attn.out_proj.weight"), p(pre + ".attn.out_proj.bias"));
    x = x + quick_gelu_mlp(torch::layer_norm(x, {D}, p(pre + ".ln_2.weight"), p(pre + ".ln_2.bias"), 1e-5),
                           p(pre + ".mlp.c_fc.weight"), p(pre + ".mlp.c_fc.bias"), p(pre + ".mlp.c_proj.weight"),
                           p(pre + ".mlp.c_proj.bias"));
  }
  at::Tensor dec = x.permute({1, 2, 0}).reshape({B, D, gh, gw});
  HeadsOutput out;
  out.features = f;
  out.logits = torch::conv2d(dec, p("decoder.linear_pred.weight"), p("decoder.linear_pred.bias"));
  out.affinity = affinity_prediction(f, comm_);
  return out;
}

// Mean over every rank's entries (quirk 11, §12.11: the reference's mean spans the whole batch).
at::Tensor batch_mean(const at::Tensor& cs, comm::Communicator* comm) {
  if (!comm) return cs.mean();
  return comm::global_sum(cs, comm) / static_cast<double>(comm::global_count(cs.numel(), comm));
}

at::Tensor affinity_prediction(const at::Tensor& f, comm::Communicator* comm) {
  at::Tensor cs = cosine(f);
  return torch::sigmoid(3.0 * (cs - batch_mean(cs, comm)));
}

at::Tensor lvc_extra_attention(const at::Tensor& f, comm::Communicator* comm) {
  torch::NoGradGuard ng;
  at::Tensor cs = cosine(f.detach());
  at::Tensor r = 3.0 * (cs - batch_mean(cs, comm));
  r = r.masked_fill(r < 0, -std::numeric_limits<float>::infinity());
  return torch::softmax(r, -1);
}

at::Tensor upsample_logits(const at::Tensor& logits, int64_t H, int64_t W) {
  namespace F = torch::nn::functional;
  return F::interpolate(
      logits, F::InterpolateFuncOptions().size(std::vector<int64_t>{H, W}).mode(torch::kBilinear).align_corners(false));
}

at::Tensor segmentation_prediction(const at::Tensor& logits, int64_t H, int64_t W) {
  return upsample_logits(logits.detach(), H, W).argmax(1);
}

}  // namespace excel::model
