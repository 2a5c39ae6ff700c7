#include "excel/data/pixel_norm.h"

#include <torch/torch.h>

namespace excel::data {

const float kPixelMean[3] = {123.675f, 116.28f, 103.53f};
const float kPixelStd[3] = {58.395f, 57.12f, 57.375f};

at::Tensor normalize_rgb(const at::Tensor& rgb) {
  TORCH_CHECK(rgb.dim() == 4 && rgb.size(3) == 3, "normalize_rgb expects [B,H,W,3]");
  auto mean = torch::tensor({kPixelMean[0], kPixelMean[1], kPixelMean[2]}).to(rgb.device()).view({1, 3, 1, 1});
  auto std = torch::tensor({kPixelStd[0], kPixelStd[1], kPixelStd[2]}).to(rgb.device()).view({1, 3, 1, 1});
  return ((rgb.permute({0, 3, 1, 2}).to(torch::kFloat) - mean) / std).contiguous();
}

}  // namespace excel::data
