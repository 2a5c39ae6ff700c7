#include "excel/eval/inference.h"

#include <torch/torch.h>

#include "excel/data/pixel_norm.h"
#include "excel/model/clip_vision.h"
#include "excel/model/heads.h"

namespace excel::eval {

namespace F = torch::nn::functional;

at::Tensor multiscale_logits(const model::ClipVision& vision, const model::Heads& heads, const at::Tensor& rgb,
                             const MultiScaleOptions& opt, const at::Tensor& base_pair_logits) {
  torch::NoGradGuard ng;
  const int64_t H = rgb.size(1), W = rgb.size(2);
  at::Tensor x = data::normalize_rgb(rgb);
  // Logits [2,K,H,W] of [x; flip(x)] at a square side.
  auto pair_logits = [&](int64_t side) {
    at::Tensor xs = F::interpolate(x, F::InterpolateFuncOptions()
                                          .size(std::vector<int64_t>{side, side})
                                          .mode(torch::kBilinear)
                                          .align_corners(false));
    model::VisionOptions vo;
    vo.keep_attn = false;
    at::Tensor feats = vision.forward(torch::cat({xs, xs.flip({3})}), {}, vo).feats_all;
    const int64_t g = side / vision.config().patch;
    return heads.forward(feats, false, {}, g, g).logits;
  };
  at::Tensor sum;
  for (size_t i = 0; i < opt.sides.size(); ++i) {
    at::Tensor logits =
        model::upsample_logits(i == 0 && base_pair_logits.defined() ? base_pair_logits : pair_logits(opt.sides[i]), H, W);
    at::Tensor l = (i == 0 && !opt.flip_average_at_base) ? logits.slice(0, 0, 1)
                                                         : (logits.slice(0, 0, 1) + logits.slice(0, 1, 2).flip({3})) / 2;
    sum = sum.defined() ? sum + l : l;
  }
  return sum / static_cast<double>(opt.sides.size());
}

}  // namespace excel::eval
