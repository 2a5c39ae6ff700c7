#include "excel/eval/seg_metrics.h"

#include <torch/torch.h>

namespace excel::eval {

at::Tensor confusion_matrix(const at::Tensor& gt, const at::Tensor& pred, int64_t K) {
  at::Tensor g = gt.flatten().to(torch::kLong), p = pred.flatten().to(torch::kLong);
  at::Tensor valid = (g >= 0) & (g < K);
  at::Tensor idx = g.masked_select(valid) * K + p.masked_select(valid).clamp(0, K - 1);
  return torch::bincount(idx, {}, K * K).view({K, K}).to(torch::kLong);
}

SegScores scores(const at::Tensor& cm) {
  at::Tensor h = cm.to(torch::kDouble);
  at::Tensor tp = h.diag(), rows = h.sum(1), cols = h.sum(0);
  SegScores s;
  s.pixel_acc = (tp.sum() / h.sum()).item<double>();
  s.mean_acc = torch::nanmean(tp / rows).item<double>();
  s.iou = tp / (rows + cols - tp);
  s.precision = tp / cols;
  s.recall = tp / rows;
  s.confusion = (cols - tp) / tp;
  at::Tensor present = rows > 0;
  s.miou = torch::nanmean(s.iou.masked_select(present)).item<double>();
  return s;
}

}  // namespace excel::eval
