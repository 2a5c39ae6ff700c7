#include "excel/model/cam.h"

#include <torch/torch.h>

#include "excel/model/placement.h"

namespace excel::model {

at::Tensor surgery_cam(const at::Tensor& f, const at::Tensor& text, int64_t C) {
  torch::NoGradGuard ng;
  // The CPU path per sample: the same bits in any batch (docs/numerics.md); the device path batched.
  if (!torch_kernels(f) && f.size(0) > 1) {
    std::vector<at::Tensor> cams;
    for (int64_t b = 0; b < f.size(0); ++b) cams.push_back(surgery_cam(f.narrow(0, b, 1), text, C));
    return torch::cat(cams, 0);
  }
  at::Tensor p = torch::softmax(2.0 * torch::matmul(f.select(1, 0), text.t()), -1);  // [B, n_t]
  at::Tensor w = (p / p.mean(-1, true)).unsqueeze(1);                                // [B,1,n_t]
  at::Tensor s = torch::matmul(f, text.t()) * w;                                     // [B,N,n_t]
  at::Tensor sim = s - s.mean(-1, true);
  at::Tensor lo = std::get<0>(sim.min(1, true)), hi = std::get<0>(sim.max(1, true));
  at::Tensor cam = (sim - lo) / (hi - lo);  // over tokens incl. the class token, no epsilon
  return cam.slice(1, 1).slice(2, 0, C).contiguous();
}

}  // namespace excel::model
