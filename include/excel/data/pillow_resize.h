// Resizes that reproduce Pillow's to the bit, as the reference's augmentation uses them (§9.3).
#pragma once
#include <ATen/core/Tensor.h>

#include <cstdint>

namespace excel::data {

// Pillow-exact BILINEAR resize of uint8 HWC (fixed-point taps, §9.3).
at::Tensor pillow_resize_bilinear(const at::Tensor& hwc_u8, int64_t out_h, int64_t out_w);
// Pillow-exact NEAREST of a label map [H,W] uint8 (the accumulated source coordinate, §9.3).
at::Tensor pillow_resize_nearest(const at::Tensor& hw_u8, int64_t out_h, int64_t out_w);

}  // namespace excel::data
