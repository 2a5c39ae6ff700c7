// Segmentation scores of the reference (§10.4): confusion matrix and the derived per-class
// and mean figures, with the reference's NaN conventions.
#pragma once
#include <ATen/core/Tensor.h>

namespace excel::eval {

// gt, pred: integer maps of the same shape; gt >= K (255) is ignored. -> [K,K] int64 H[gt,pred].
at::Tensor confusion_matrix(const at::Tensor& gt, const at::Tensor& pred, int64_t K);

struct SegScores {
  double pixel_acc = 0, mean_acc = 0, miou = 0;  // miou: nanmean of IoU over classes with GT pixels
  at::Tensor iou, precision, recall, confusion;  // [K] float64; 0/0 -> NaN (IoU: 0 if union > 0)
};

SegScores scores(const at::Tensor& confusion);

}  // namespace excel::eval
