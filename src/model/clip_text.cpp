#include "excel/model/clip_text.h"

#include <torch/torch.h>

#include <cmath>

#include "excel/common/errors.h"
#include "excel/model/prompts.h"
#include "excel/model/tokenizer.h"
#include "excel/model/tse.h"

namespace excel::model {

ClipText::ClipText(const ClipWeights& wt) : cfg_(wt.config) {
  tok_emb_ = wt.get("token_embedding.weight");
  pos_ = wt.get("positional_embedding");
  ln_w_ = wt.get("ln_final.weight");
  ln_b_ = wt.get("ln_final.bias");
  proj_ = wt.get("text_projection");
  for (int64_t i = 0; i < cfg_.text_layers; ++i) {
    const std::string p = "transformer.resblocks." + std::to_string(i) + ".";
    blocks_.push_back(BlockWeights::load(wt, p));
  }
}

at::Tensor ClipText::encode(const at::Tensor& ids) const {
  torch::AutoGradMode grad_mode(tok_emb_.requires_grad());  // gradients only while pre-training the tower
  if (ids.dim() != 2 || ids.size(1) != cfg_.context_length)
    throw InputError("token ids must be [n, " + std::to_string(cfg_.context_length) + "]");
  if (ids.numel() && (ids.min().item<int64_t>() < 0 || ids.max().item<int64_t>() >= cfg_.vocab_size))
    throw InputError("token id outside the vocabulary of " + std::to_string(cfg_.vocab_size));
  const int64_t n = ids.size(0), T = ids.size(1), W = cfg_.text_width, H = cfg_.text_heads, D = W / H;
  const double scale = 1.0 / std::sqrt(static_cast<double>(D));
  at::Tensor x = tok_emb_.index_select(0, ids.flatten()).view({n, T, W}) + pos_;
  at::Tensor mask = torch::full({T, T}, -std::numeric_limits<float>::infinity()).triu(1);
  for (const Block& b : blocks_) {
    at::Tensor qkv = torch::linear(torch::layer_norm(x, {W}, b.ln1_w, b.ln1_b, 1e-5), b.in_w, b.in_b)
                         .view({n, T, 3, H, D})
                         .permute({2, 0, 3, 1, 4});
    at::Tensor a = torch::softmax(torch::matmul(qkv[0] * scale, qkv[1].transpose(-1, -2)) + mask, -1);
    at::Tensor o = torch::matmul(a, qkv[2]).transpose(1, 2).reshape({n, T, W});
    x = x + torch::linear(o, b.out_w, b.out_b);
    x = x + quick_gelu_mlp(torch::layer_norm(x, {W}, b.ln2_w, b.ln2_b, 1e-5), b.fc_w, b.fc_b, b.proj_w, b.proj_b);
  }
  x = torch::layer_norm(x, {W}, ln_w_, ln_b_, 1e-5);
  at::Tensor eot = ids.argmax(-1);
  return torch::matmul(x.index({torch::arange(n), eot}), proj_);
}

at::Tensor ClipText::encode_prompts(const std::vector<std::string>& names, const Tokenizer& tok) const {
  std::vector<std::string> prompts;
  for (const auto& n : names) prompts.push_back(make_prompt(n));
  at::Tensor f = encode(tok.tokenize(prompts, cfg_.context_length));
  f = f / f.norm(2, {-1}, true);
  // One template: the template mean is the identity; normalise again as the reference does.
  return f / f.norm(2, {-1}, true);
}

void check_vocabulary(const Tokenizer& tok, const ClipConfig& cfg, const std::string& bpe_path) {
  if (tok.vocab_size() != cfg.vocab_size)
    throw ConfigError(bpe_path + ": a vocabulary of " + std::to_string(tok.vocab_size()) +
                      " tokens, but the checkpoint's text tower has " + std::to_string(cfg.vocab_size) +
                      " (--model_bpe must be the merge list the checkpoint was trained with)");
}

at::Tensor dataset_text_features(const ClipWeights& weights, const std::string& dataset, const std::string& bank_path,
                                 const std::string& bpe_path) {
  const DatasetText& dt = dataset_text(dataset);
  const std::string bpe = bpe_path.empty() ? default_bpe_path() : bpe_path;
  Tokenizer tok(bpe);
  check_vocabulary(tok, weights.config, bpe);
  return text_semantic_enrichment(ClipText(weights).encode_prompts(all_text_names(dt), tok),
                                  static_cast<int64_t>(dt.class_names.size()), load_attribute_bank(bank_path));
}

}  // namespace excel::model
