// The per-image inference that training validation, excel_eval and excel_cam_demo share: an image
// resized to the network input, the frozen backbone, CAMs (static §3, or dynamic with LVC §5 and
// flip fusion §4.8), their affinity refinement and pseudo-label (§4), and the heads' segmentation
// at one or several scales (§10.2). One copy of each step, so the three callers cannot drift.
#pragma once
#include <ATen/core/Tensor.h>

#include <string>
#include <vector>

#include "excel/eval/dense_crf.h"

namespace excel::data {
class VocLayoutDataset;
}
namespace excel::model {
class ClipVision;
class Heads;
struct RefinedCams;
}  // namespace excel::model

namespace excel::eval {

// An image of a split with what the split knows about it: ground truth and image-level labels
// when its mask exists (val), the image alone otherwise (test).
struct LabelledImage {
  std::string id;
  at::Tensor rgb;    // [H,W,3] uint8
  at::Tensor image;  // [3,H,W] normalised float
  at::Tensor gt;     // [H,W] uint8, undefined without a mask
  at::Tensor cls;    // [C] float 0/1, undefined without a mask
};
LabelledImage load_image(const data::VocLayoutDataset& set, size_t i);

enum class CamKind {
  kStatic,   // §3 on one backbone pass; with heads, their affinity G and logits come along
  kDynamic,  // §4.8: LVC features of [x; flip(x)] fused by max, G from the heads (needs heads)
};

// What one image's CAM pass produced.
struct ImageCams {
  at::Tensor x;         // [1,3,crop,crop] network input
  at::Tensor cam;       // [P,C]
  at::Tensor attn;      // [L,N,N] attention list of x
  at::Tensor affinity;  // [P,P] the heads' G; undefined without heads
  at::Tensor logits;    // heads logits at the crop: [1,K,g,g] static, [2,K,g,g] of [x; flip(x)] dynamic
};

struct MultiScaleOptions {
  std::vector<int64_t> sides{320, 224, 384, 480};  // square network inputs, the first is the base scale
  bool flip_average_at_base = false;               // VOC: false (flipped logits discarded), COCO: true
};

class ImagePipeline {
 public:
  // vision and heads (optional) outlive the pipeline; text is T_all [n_t,E] of the data set.
  ImagePipeline(const model::ClipVision& vision, at::Tensor text, int64_t num_classes, int64_t crop,
                const model::Heads* heads = nullptr);

  // Normalised [3,H,W] or [B,3,H,W] -> [B,3,crop,crop] (bilinear, align_corners = false).
  at::Tensor network_input(const at::Tensor& image) const;
  // Static CAMs of a batch of network inputs, attention not kept: [B,P,C].
  at::Tensor static_cams(const at::Tensor& x) const;
  // One image [3,H,W] through the backbone (and the heads, when there are) in eval mode.
  ImageCams cams(const at::Tensor& image, CamKind kind) const;
  // §4.1-4.3: the CAMs of the present classes refined by the attention (gated by G when known).
  model::RefinedCams refine(const ImageCams& c, const at::Tensor& cls, double tau) const;
  // §4.4-4.5 pseudo-label [H,W] int64 of refined CAMs; with a CRF (§10.3) the CRF replaces PAR.
  at::Tensor pseudo_label(const ImageCams& c, const model::RefinedCams& refined, const at::Tensor& rgb,
                          const DenseCrfParams* crf = nullptr) const;
  // §10.2: rgb [1,H,W,3] uint8 -> averaged logits [1,K,H,W] (needs heads). base_pair_logits:
  // heads logits of [x; flip(x)] at the base side when a dynamic CAM pass already computed them.
  at::Tensor segmentation_logits(const at::Tensor& rgb, const MultiScaleOptions& opt,
                                 const at::Tensor& base_pair_logits = at::Tensor()) const;

  int64_t grid() const { return g_; }

 private:
  const model::ClipVision& vision_;
  const model::Heads* heads_;
  at::Tensor text_;
  int64_t C_, crop_, g_;
};

// Argmax of a dense CRF over probabilities [K,H,W] with the image rgb [H,W,3] -> [H,W] int64.
at::Tensor crf_argmax(const at::Tensor& probs, const at::Tensor& rgb, const DenseCrfParams& p);

// §10.2 without a pipeline object (the fixture dump replays it on given heads).
at::Tensor multiscale_logits(const model::ClipVision& vision, const model::Heads& heads, const at::Tensor& rgb,
                             const MultiScaleOptions& opt = MultiScaleOptions(),
                             const at::Tensor& base_pair_logits = at::Tensor());

}  // namespace excel::eval
