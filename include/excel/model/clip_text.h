// CLIP text tower (§2.2) and prompt encoding (§2.4). Runs without autograd.
#pragma once
#include <ATen/core/Tensor.h>

#include <string>
#include <vector>

#include "excel/model/checkpoint.h"

namespace excel::model {

class Tokenizer;

class ClipText {
 public:
  explicit ClipText(const ClipWeights& weights);
  // ids [n, context] int64 -> [n, E] (not normalised).
  at::Tensor encode(const at::Tensor& ids) const;
  // One prompt per name, normalised, template-averaged (one template), normalised again: [n, E].
  at::Tensor encode_prompts(const std::vector<std::string>& names, const Tokenizer& tok) const;
  const ClipConfig& config() const { return cfg_; }

 private:
  struct Block {
    at::Tensor ln1_w, ln1_b, in_w, in_b, out_w, out_b, ln2_w, ln2_b, fc_w, fc_b, proj_w, proj_b;
  };
  ClipConfig cfg_;
  at::Tensor tok_emb_, pos_, ln_w_, ln_b_, proj_;
  std::vector<Block> blocks_;
};

}  // namespace excel::model
