// The tensors of one CLIP residual attention block (vision and text towers share the layout),
// and the block's QuickGELU MLP.
#pragma once
#include <ATen/core/Tensor.h>

#include <string>

#include "excel/model/clip_checkpoint.h"

namespace excel::model {

struct BlockWeights {
  at::Tensor ln1_w, ln1_b, in_w, in_b, out_w, out_b, ln2_w, ln2_b, fc_w, fc_b, proj_w, proj_b;
  // prefix e.g. "visual.transformer.resblocks.3."
  static BlockWeights load(const ClipWeights& weights, const std::string& prefix);
};

// c_proj(QuickGELU(c_fc(x))), QuickGELU(u) = u * sigmoid(1.702 u). With `per_sample` the GEMMs
// run one sample of x [B,n,W] at a time on the CPU (batch-invariant bits, no autograd: the frozen
// backbone); without it they are torch::linear (the trained heads).
at::Tensor quick_gelu_mlp(const at::Tensor& x, const at::Tensor& fc_w, const at::Tensor& fc_b, const at::Tensor& proj_w,
                          const at::Tensor& proj_b, bool per_sample = false);

}  // namespace excel::model
