// Multi-scale, flip segmentation inference (§10.2).
#pragma once
#include <ATen/core/Tensor.h>

#include <vector>

namespace excel::model {
class ClipVision;
class Heads;
}  // namespace excel::model

namespace excel::eval {

struct MultiScaleOptions {
  std::vector<int64_t> sides{320, 224, 384, 480};  // square network inputs, the first is the base scale
  bool flip_average_at_base = false;               // VOC: false (flipped logits discarded), COCO: true
};

// rgb [1,H,W,3] uint8 -> averaged logits [1,K,H,W] (eval mode: no dropout). base_pair_logits:
// optional heads logits [2,K,g,g] of [x; flip(x)] at the base side, already computed by the
// caller (excel_eval's pseudo-label pass runs that very forward), so it is not run twice.
at::Tensor multiscale_logits(const model::ClipVision& vision, const model::Heads& heads, const at::Tensor& rgb,
                             const MultiScaleOptions& opt = MultiScaleOptions(),
                             const at::Tensor& base_pair_logits = at::Tensor());

}  // namespace excel::eval
