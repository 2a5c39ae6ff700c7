// Image files as tensors: JPEG and PNG in (data/image_codecs.h: libjpeg-turbo, libpng; other formats
// refused), JPEG or PNG out by the extension, heat-map overlays (OpenCV imgproc).
#pragma once
#include <ATen/core/Tensor.h>

#include <string>

namespace excel::data {

// [H,W,3] uint8 RGB; grey images are replicated to 3 channels. Throws InputError naming the file.
at::Tensor read_rgb(const std::string& path);
// [H,W] uint8 class-index PNG (palette PNGs give their indices). Throws InputError naming the file.
at::Tensor read_label_png(const std::string& path);
// [H,W,3] RGB / [H,W] grey uint8 as .png or .jpg/.jpeg (quality 95), byte for byte what cv::imwrite
// wrote; through a temporary renamed into place, folders made. Throws InputError naming the file.
void write_rgb(const std::string& path, const at::Tensor& rgb_hwc);
void write_gray(const std::string& path, const at::Tensor& hw_u8);
// Blends a [h,w] map in [0,1] (resized to the image) as a JET heat map over rgb [H,W,3].
at::Tensor heatmap_overlay(const at::Tensor& rgb_hwc, const at::Tensor& map_hw, double alpha = 0.5);
// A [H,W] class-index mask coloured with the VOC palette (voc_palette) -> [H,W,3] uint8 RGB.
at::Tensor palette_rgb(const at::Tensor& labels_hw);

}  // namespace excel::data
