// CLIP image encoder with ExCEL's dual-path "surgery" blocks (docs/algorithm.md §1, §5).
// One QKV projection per block feeds both paths; all attention maps come from batched matmuls.
// Runs without autograd unless VisionOptions::autograd (pre-training the tower, data_tools/pretrain_tiny_clip).
// Not thread-safe (the positional-table cache and attention workspaces are per instance).
#pragma once
#include <ATen/core/Tensor.h>

#include <map>
#include <vector>

#include "excel/model/block_weights.h"
#include "excel/model/clip_checkpoint.h"

namespace excel::model {

// Dynamic-pass features by the linear update of §11.2: surgery [B,N,W] (row 0 = class row),
// value_proj_patch [B,P,W] (patch rows of U), E [B,P,P]; heads = vision heads.
at::Tensor lvc_dynamic_features(const at::Tensor& surgery, const at::Tensor& value_proj_patch, const at::Tensor& E,
                                int64_t heads, const at::Tensor& ln_w, const at::Tensor& ln_b, const at::Tensor& proj);

// ln_post + projection + token-axis normalisation of surgery tokens [B,N,W] (§1.7).
at::Tensor project_surgery(const at::Tensor& surgery, const at::Tensor& ln_w, const at::Tensor& ln_b,
                           const at::Tensor& proj);

struct VisionOutputs {
  at::Tensor features;    // [B,N,E] projected, normalised over tokens (§1.7)
  at::Tensor attn_all;    // [L,B,N,N] per-layer attention as returned (§1.8); undefined if not kept
  at::Tensor feats_all;   // [L,B,N,W] per-layer tokens with the reference's aliasing (§1.8)
  at::Tensor surgery;     // [B,N,W] final surgery tokens before ln_post, row 0 = O_last row 0
  at::Tensor value_proj;  // [B,N,W] U = sum over surgery blocks of V_l W_out^T (§11.2), if asked
};

struct VisionOptions {
  bool keep_attn = true;
  bool keep_feats = true;
  bool keep_value_proj = false;
  // Differentiable: the same computation with plain torch ops (batched GEMMs, no workspaces, no
  // batch-invariance guarantee), gradients reaching the weights when they require grad. Returns
  // surgery (and the kept tensors) but not features; see embed_tokens.
  bool autograd = false;
};

class ClipVision {
 public:
  // train_grid > 0 reproduces the reference's "train" mode: the positional table is replaced by
  // its interpolation to train_grid at construction (§1.3; quirk 10, §12.10). 0 keeps the stored table.
  explicit ClipVision(const ClipWeights& weights, int64_t train_grid = 0);

  // x: normalised [B,3,H,W], H and W multiples of the patch size. extra_attn: optional E
  // [B,P,P] added to the patch block of every surgery head (LVC, §5). On the CPU each sample's
  // outputs are the same bits in any batch (every GEMM sees one sample's rows).
  VisionOutputs forward(const at::Tensor& x, const at::Tensor& extra_attn = at::Tensor(),
                        const VisionOptions& opt = VisionOptions()) const;

  // Positional table [1+gh*gw, W] for a grid, interpolated bilinearly from the current table.
  at::Tensor positional_table(int64_t gh, int64_t gw) const;

  int64_t num_layers() const { return static_cast<int64_t>(blocks_.size()); }
  int64_t first_surgery_block() const { return num_layers() - kSurgeryBlocks; }
  const ClipConfig& config() const { return cfg_; }
  at::Device device() const { return conv_w_.device(); }  // where the weights are (model/placement.h)
  const at::Tensor& ln_post_weight() const { return ln_post_w_; }
  const at::Tensor& ln_post_bias() const { return ln_post_b_; }
  const at::Tensor& projection() const { return proj_; }

  // ln_post + projection + token-axis normalisation of final surgery tokens [B,N,W] (§1.7).
  at::Tensor project(const at::Tensor& surgery) const;

  // ln_post + projection of tokens [..., W] -> [..., E], not normalised: row 0 of `surgery` is CLIP's
  // image embedding. Differentiable (pre-training).
  at::Tensor embed_tokens(const at::Tensor& tokens) const;

  // Features of the dynamic (LVC) pass without a second backbone pass, by the exact linear
  // update of §11.2: S_dyn = S + heads * pad(E) U, from the plain pass's `surgery` and `value_proj`
  // (VisionOptions::keep_value_proj).
  at::Tensor dynamic_features(const at::Tensor& surgery, const at::Tensor& value_proj, const at::Tensor& extra) const;

  static constexpr int64_t kSurgeryBlocks = 5;

 private:
  using Block = BlockWeights;
  ClipConfig cfg_;
  at::Tensor conv_w_, class_emb_, pos_, ln_pre_w_, ln_pre_b_, ln_post_w_, ln_post_b_, proj_;
  int64_t pos_side_ = 0;
  std::vector<Block> blocks_;
  mutable std::map<std::pair<int64_t, int64_t>, at::Tensor> pos_cache_;
  // Attention workspaces reused across blocks and calls: glibc returns blocks above 32 MB to the
  // kernel on free, so fresh [4,B,H,N,N] temporaries would cost page faults on every block.
  mutable at::Tensor ws_maps_, ws_sur_;
};

}  // namespace excel::model
