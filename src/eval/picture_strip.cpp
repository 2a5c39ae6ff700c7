#include "excel/eval/picture_strip.h"

#include <torch/torch.h>

#include "excel/common/errors.h"

namespace excel::eval {

int64_t strip_cam_class(const at::Tensor& maps, const std::vector<int64_t>& classes) {
  int64_t best = -1;
  double best_mean = 0;
  for (int64_t c : classes) {
    const double m = maps[c].mean().item<double>();
    if (best < 0 || m > best_mean) best = c, best_mean = m;
  }
  return best;
}

at::Tensor picture_strip(const std::vector<at::Tensor>& panels, int64_t separator) {
  if (panels.empty()) throw ConfigError("picture strip: no panels");
  const int64_t H = panels[0].size(0);
  std::vector<at::Tensor> parts;
  for (const at::Tensor& p : panels) {
    if (p.dim() != 3 || p.size(0) != H || p.size(2) != 3)
      throw ConfigError("picture strip: panels must be [" + std::to_string(H) + ",W,3]");
    if (!parts.empty() && separator > 0) parts.push_back(torch::full({H, separator, 3}, 255, torch::kByte));
    parts.push_back(p.to(torch::kByte));
  }
  return torch::cat(parts, 1).contiguous();
}

}  // namespace excel::eval
