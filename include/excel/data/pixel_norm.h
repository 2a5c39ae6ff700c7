// The reference's input normalisation (ImageNet statistics, not CLIP's own: §1.2; quirk 7, §12.7),
// applied to decoded images before the backbone.
#pragma once
#include <ATen/core/Tensor.h>

namespace excel::data {

// ImageNet statistics in 0-255 units, as the reference normalises its inputs.
extern const float kPixelMean[3];
extern const float kPixelStd[3];

// uint8 RGB [B,H,W,3] -> normalised float [B,3,H,W].
at::Tensor normalize_rgb(const at::Tensor& rgb_bhwc);

}  // namespace excel::data
