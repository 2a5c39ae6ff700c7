// Picture strips of excel_eval (--eval_strips): one image's panels side by side at the image's
// size, separated by thin white bars: image | CAM heat map | pseudo-label | segmentation | ground
// truth (the panels a mode has; masks in the VOC palette).
#pragma once
#include <ATen/core/Tensor.h>

#include <vector>

namespace excel::eval {

// The present class whose CAM is shown: the one of `classes` with the largest mean CAM over the
// image; maps is [C,g,g]. -1 when classes is empty.
int64_t strip_cam_class(const at::Tensor& maps, const std::vector<int64_t>& classes);

// RGB panels [H,W,3] uint8 of equal height -> [H, sum W + separator * (n - 1), 3] uint8.
at::Tensor picture_strip(const std::vector<at::Tensor>& panels, int64_t separator = 4);

}  // namespace excel::eval
