#include "excel/train/losses.h"

#include <torch/torch.h>

namespace excel::train {

namespace F = torch::nn::functional;

at::Tensor upsample(const at::Tensor& logits, int64_t H, int64_t W) {
  return F::interpolate(logits, F::InterpolateFuncOptions()
                                    .size(std::vector<int64_t>{H, W})
                                    .mode(torch::kBilinear)
                                    .align_corners(false));
}

at::Tensor segmentation_loss(const at::Tensor& logits, const at::Tensor& labels) {
  at::Tensor y = labels.to(torch::kLong);
  at::Tensor logp = torch::log_softmax(upsample(logits, y.size(1), y.size(2)), 1);
  at::Tensor valid = y != 255;
  at::Tensor ce = -logp.gather(1, y.masked_fill(~valid, 0).unsqueeze(1)).squeeze(1);  // [B,H,W]
  at::Tensor bg = (y == 0).to(torch::kFloat), fg = (valid & (y != 0)).to(torch::kFloat);
  at::Tensor l_bg = (ce * bg).sum() / (bg.sum() + 1e-6);
  at::Tensor l_fg = (ce * fg).sum() / (fg.sum() + 1e-6);
  return 0.5 * (l_bg + l_fg);
}

at::Tensor diversity_loss(const at::Tensor& p, const at::Tensor& targets) {
  at::Tensor pos = (targets == 1).to(torch::kFloat), neg = (targets == 0).to(torch::kFloat);
  return 0.5 * (pos * (1 - p)).sum() / (pos.sum() + 1) + 0.5 * (neg * p).sum() / (neg.sum() + 1);
}

at::Tensor segmentation_prediction(const at::Tensor& logits, int64_t H, int64_t W) {
  return upsample(logits.detach(), H, W).argmax(1);
}

}  // namespace excel::train
