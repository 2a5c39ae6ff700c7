#include "excel/model/block_weights.h"

#include <torch/torch.h>

#include "batched_matmul.h"

namespace excel::model {

BlockWeights BlockWeights::load(const ClipWeights& w, const std::string& p) {
  return {w.get(p + "ln_1.weight"),          w.get(p + "ln_1.bias"),
          w.get(p + "attn.in_proj_weight"),  w.get(p + "attn.in_proj_bias"),
          w.get(p + "attn.out_proj.weight"), w.get(p + "attn.out_proj.bias"),
          w.get(p + "ln_2.weight"),          w.get(p + "ln_2.bias"),
          w.get(p + "mlp.c_fc.weight"),      w.get(p + "mlp.c_fc.bias"),
          w.get(p + "mlp.c_proj.weight"),    w.get(p + "mlp.c_proj.bias")};
}

at::Tensor quick_gelu_mlp(const at::Tensor& x, const at::Tensor& fc_w, const at::Tensor& fc_b, const at::Tensor& proj_w,
                          const at::Tensor& proj_b, bool per_sample) {
  auto linear = [&](const at::Tensor& in, const at::Tensor& w, const at::Tensor& b) {
    return per_sample ? per_sample_linear(in, w, b) : torch::linear(in, w, b);
  };
  at::Tensor h = linear(x, fc_w, fc_b);
  return linear(h * torch::sigmoid(1.702 * h), proj_w, proj_b);
}

}  // namespace excel::model
