// Pseudo-label generation (docs/algorithm.md §4): attention-affinity refinement restricted to CAM
// boxes, background scoring, PAR pixel refinement, and affinity labels.
#pragma once
#include <ATen/core/Tensor.h>

#include <vector>

namespace excel::model {

struct ParOptions {
  std::vector<int64_t> dilations{1, 2, 4, 8, 12, 24};
  int iterations = 20;
  double w1 = 0.3, w2 = 0.01;
};

// [P,P] uint8: 1 where the Chebyshev distance on the gh x gw grid is <= radius (§4.6).
at::Tensor radius_mask(int64_t gh, int64_t gw, int64_t radius, at::Device device = at::kCPU);

// Â of §4.1 from one sample's attention list [L,N,N] (last six entries, class row/column
// dropped). G [P,P] (the affinity prediction) switches to the gated selection; undefined: mean.
at::Tensor aggregate_attention(const at::Tensor& attn, const at::Tensor& G = at::Tensor());

// §4.2: three column/row normalisation pairs, symmetrisation, one squaring.
at::Tensor transition_matrix(const at::Tensor& A);

// §4.3 steps 1-5: union of the bounding boxes of the thresholded map's contours, with the
// reference's end clamp. map [gh,gw] float in [0,1] -> [gh,gw] float 0/1.
at::Tensor box_mask(const at::Tensor& map, double tau);
// The same for maps [n,gh,gw] at once in ATen ops on the maps' device (the device path): boxes of
// the 8-connected components of each thresholded map. -> [n,gh,gw] float 0/1.
at::Tensor box_masks(const at::Tensor& maps, double tau);

struct RefinedCams {
  at::Tensor maps;               // [n, gh, gw], one per present class in class order
  std::vector<int64_t> classes;  // present class indices
};

// The attention aggregates that a feature cache keeps (§11.3): the mean of the last six maps
// and the G-independent selection (maps whose mass is at least the mean mass). [P,P] each.
struct AttentionAggregates {
  at::Tensor mean, selected;
};
AttentionAggregates attention_aggregates(const at::Tensor& attn);

// §4.2-4.3 from an aggregated affinity Â [P,P] (already multiplied by G when gated).
RefinedCams refine_cams_with_matrix(const at::Tensor& cam, const at::Tensor& A, const at::Tensor& labels, double tau,
                                    int64_t gh, int64_t gw);

// §4.1-4.3 for one sample: cam [P,C], attn [L,N,N], labels [C] (0/1), optional G [P,P].
RefinedCams refine_cams_with_affinity(const at::Tensor& cam, const at::Tensor& attn, const at::Tensor& labels,
                                      const at::Tensor& G, double tau, int64_t gh, int64_t gw);

// §4.4 steps 1-3: min-max each map, resize (OpenCV INTER_LINEAR; on the device path ATen's
// bilinear interpolation, the same sampling grid) to H x W, prepend 1 - max.
at::Tensor cams_with_background(const at::Tensor& maps, int64_t H, int64_t W);

// §4.5: image [1,3,Hi,Wi] (resized to the masks, align_corners), masks [1,K,H,W] -> refined masks.
at::Tensor par_refine(const at::Tensor& image, const at::Tensor& masks, const ParOptions& opt = ParOptions());

// §4.4 steps 4 and 6: label map [H,W] int64 = keys[argmax] of PAR's output, keys = [0, c_1 + 1, ...].
at::Tensor labels_from_masks(const at::Tensor& refined, const std::vector<int64_t>& classes);

// Whole §4 for one sample: refined CAMs -> background -> PAR -> label map [H,W] int64.
at::Tensor pseudo_label(const RefinedCams& refined, const at::Tensor& par_image, int64_t H, int64_t W,
                        const ParOptions& opt = ParOptions());

// §4.6: label maps [B,H,W] -> affinity targets [B,P,P] uint8 (1 same, 0 different, 255 ignored).
at::Tensor affinity_labels(const at::Tensor& labels, const at::Tensor& radius, int64_t gh, int64_t gw);

// §4.4: the PAR image of training: uint8(trunc(x * std + mean)) / 255, from normalised [B,3,H,W].
at::Tensor denormalize_for_par(const at::Tensor& normalized);

}  // namespace excel::model
