// CLIP text tower (§2.2) and prompt encoding (§2.4). Runs without autograd unless its weights require
// grad (pre-training, data_tools/pretrain_tiny_clip).
#pragma once
#include <ATen/core/Tensor.h>

#include <string>
#include <vector>

#include "excel/model/block_weights.h"
#include "excel/model/clip_checkpoint.h"

namespace excel::model {

class Tokenizer;

// Throws ConfigError naming `bpe_path` when the tokenizer's vocabulary is not the text tower's
// (a merge list other than the one the checkpoint was trained with).
void check_vocabulary(const Tokenizer& tok, const ClipConfig& cfg, const std::string& bpe_path);

class ClipText {
 public:
  explicit ClipText(const ClipWeights& weights);
  // ids [n, context] int64 -> [n, E] (not normalised).
  at::Tensor encode(const at::Tensor& ids) const;
  // One prompt per name, normalised, template-averaged (one template), normalised again: [n, E].
  at::Tensor encode_prompts(const std::vector<std::string>& names, const Tokenizer& tok) const;
  const ClipConfig& config() const { return cfg_; }

 private:
  using Block = BlockWeights;
  ClipConfig cfg_;
  at::Tensor tok_emb_, pos_, ln_w_, ln_b_, proj_;
  std::vector<Block> blocks_;
};

// T_all of §2.5 for a data set: prompt features of the class and background names, enriched with
// the attribute bank at bank_path (bpe_path empty: the default merge list).
at::Tensor dataset_text_features(const ClipWeights& weights, const std::string& dataset, const std::string& bank_path,
                                 const std::string& bpe_path = "");

}  // namespace excel::model
