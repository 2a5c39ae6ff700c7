#include "excel/train/losses.h"

#include <torch/torch.h>

#include "excel/comm/communicator.h"
#include "excel/model/heads.h"

namespace excel::train {

namespace {
double global_total(const at::Tensor& mask, comm::Communicator* comm) {
  at::Tensor s = mask.sum().reshape({1}).to(torch::kDouble).contiguous();
  if (comm) comm->all_reduce_sum(s);
  return s.item<double>();
}
}  // namespace

at::Tensor segmentation_loss(const at::Tensor& logits, const at::Tensor& labels, comm::Communicator* comm) {
  at::Tensor y = labels.to(torch::kLong);
  at::Tensor logp = torch::log_softmax(model::upsample_logits(logits, y.size(1), y.size(2)), 1);
  at::Tensor valid = y != 255;
  at::Tensor ce = -logp.gather(1, y.masked_fill(~valid, 0).unsqueeze(1)).squeeze(1);  // [B,H,W]
  at::Tensor bg = (y == 0).to(torch::kFloat), fg = (valid & (y != 0)).to(torch::kFloat);
  if (comm && comm->size() > 1) {
    return 0.5 *
           ((ce * bg).sum() / (global_total(bg, comm) + 1e-6) + (ce * fg).sum() / (global_total(fg, comm) + 1e-6));
  }
  at::Tensor l_bg = (ce * bg).sum() / (bg.sum() + 1e-6);
  at::Tensor l_fg = (ce * fg).sum() / (fg.sum() + 1e-6);
  return 0.5 * (l_bg + l_fg);
}

at::Tensor diversity_loss(const at::Tensor& p, const at::Tensor& targets, comm::Communicator* comm) {
  at::Tensor pos = (targets == 1).to(torch::kFloat), neg = (targets == 0).to(torch::kFloat);
  if (comm && comm->size() > 1) {
    return 0.5 * (pos * (1 - p)).sum() / (global_total(pos, comm) + 1) +
           0.5 * (neg * p).sum() / (global_total(neg, comm) + 1);
  }
  return 0.5 * (pos * (1 - p)).sum() / (pos.sum() + 1) + 0.5 * (neg * p).sum() / (neg.sum() + 1);
}

}  // namespace excel::train
