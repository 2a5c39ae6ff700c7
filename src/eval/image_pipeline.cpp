#include "excel/eval/image_pipeline.h"

#include <torch/torch.h>

#include <filesystem>

#include "excel/data/image_io.h"
#include "excel/data/pixel_norm.h"
#include "excel/data/voc_layout_dataset.h"
#include "excel/model/cam.h"
#include "excel/model/clip_vision.h"
#include "excel/model/heads.h"
#include "excel/model/pseudo_label.h"

namespace excel::eval {
namespace {

namespace F = torch::nn::functional;

at::Tensor resize_square(const at::Tensor& x, int64_t side) {
  return F::interpolate(
      x,
      F::InterpolateFuncOptions().size(std::vector<int64_t>{side, side}).mode(torch::kBilinear).align_corners(false));
}

// §4.8: CAMs of x and flip(x) [2,P,C] -> fused by max, min-max normalised per class [P,C].
at::Tensor fuse_flipped_cams(const at::Tensor& cam, int64_t g) {
  const int64_t C = cam.size(2);
  at::Tensor c = cam.view({2, g, g, C});
  at::Tensor fused = torch::max(c[0], c[1].flip({1}));  // [g,g,C]
  fused = fused - fused.amin({0, 1}, true);
  fused = fused / (fused.amax({0, 1}, true) + 1e-5);
  return fused.reshape({g * g, C});
}

}  // namespace

LabelledImage load_image(const data::VocLayoutDataset& set, size_t i) {
  LabelledImage s;
  s.id = set.id(i);
  if (std::filesystem::is_regular_file(set.mask_path(i))) {
    data::ValSample v = set.val_sample(i);
    s.rgb = v.rgb;
    s.image = v.image;
    s.gt = v.gt;
    s.cls = v.cls;
  } else {
    s.rgb = data::read_rgb(set.image_path(i));
    s.image = data::normalize_rgb(s.rgb.unsqueeze(0)).squeeze(0);
  }
  return s;
}

ImagePipeline::ImagePipeline(const model::ClipVision& vision, at::Tensor text, int64_t num_classes, int64_t crop,
                             const model::Heads* heads)
    : vision_(vision),
      heads_(heads),
      text_(std::move(text)),
      C_(num_classes),
      crop_(crop),
      g_(crop / vision.config().patch) {}

at::Tensor ImagePipeline::network_input(const at::Tensor& image) const {
  const at::Tensor x = image.to(vision_.device());  // the one copy of the image to the model's device
  return resize_square(x.dim() == 3 ? x.unsqueeze(0) : x, crop_);
}

at::Tensor ImagePipeline::static_cams(const at::Tensor& x) const {
  torch::NoGradGuard ng;
  model::VisionOptions opt;
  opt.keep_attn = opt.keep_feats = false;
  return model::surgery_cam(vision_.forward(x, {}, opt).features, text_, C_);
}

ImageCams ImagePipeline::cams(const at::Tensor& image, CamKind kind) const {
  torch::NoGradGuard ng;
  ImageCams c;
  c.x = network_input(image);
  if (kind == CamKind::kStatic) {
    model::VisionOutputs vo = vision_.forward(c.x);
    c.cam = model::surgery_cam(vo.features, text_, C_)[0];
    c.attn = vo.attn_all.select(1, 0);
    if (heads_) {
      model::HeadsOutput ho = heads_->forward(vo.feats_all, false, {}, g_, g_);
      c.affinity = ho.affinity[0];
      c.logits = ho.logits;
    }
    return c;
  }
  TORCH_CHECK(heads_, "dynamic CAMs need the trained heads");
  model::VisionOptions opt;
  opt.keep_value_proj = true;
  model::VisionOutputs vo = vision_.forward(torch::cat({c.x, c.x.flip({3})}), {}, opt);
  model::HeadsOutput ho = heads_->forward(vo.feats_all, false, {}, g_, g_);
  at::Tensor E = model::lvc_extra_attention(ho.features);
  at::Tensor f = model::lvc_dynamic_features(vo.surgery, vo.value_proj.slice(1, 1), E, vision_.config().vision_heads,
                                             vision_.ln_post_weight(), vision_.ln_post_bias(), vision_.projection());
  c.cam = fuse_flipped_cams(model::surgery_cam(f, text_, C_), g_);
  c.attn = vo.attn_all.select(1, 0);
  c.affinity = ho.affinity[0];
  c.logits = ho.logits;
  return c;
}

model::RefinedCams ImagePipeline::refine(const ImageCams& c, const at::Tensor& cls, double tau) const {
  torch::NoGradGuard ng;
  return model::refine_cams_with_affinity(c.cam, c.attn, cls, c.affinity, tau, g_, g_);
}

at::Tensor ImagePipeline::pseudo_label(const ImageCams& c, const model::RefinedCams& refined, const at::Tensor& rgb,
                                       const DenseCrfParams* crf) const {
  torch::NoGradGuard ng;
  const int64_t H = rgb.size(0), W = rgb.size(1);
  if (!crf) return model::pseudo_label(refined, c.x, H, W);
  // §10.3: the class maps with background, before PAR, as probabilities.
  at::Tensor idx = crf_argmax(model::cams_with_background(refined.maps, H, W), rgb, *crf);
  std::vector<int64_t> keys{0};
  for (int64_t k : refined.classes) keys.push_back(k + 1);
  return torch::tensor(keys).index({idx}).to(c.x.device());
}

at::Tensor ImagePipeline::segmentation_logits(const at::Tensor& rgb, const MultiScaleOptions& opt,
                                              const at::Tensor& base_pair_logits) const {
  TORCH_CHECK(heads_, "segmentation needs the trained heads");
  return multiscale_logits(vision_, *heads_, rgb, opt, base_pair_logits);
}

at::Tensor crf_argmax(const at::Tensor& probs, const at::Tensor& rgb, const DenseCrfParams& p) {
  // The dense CRF is CPU code: one explicit copy of the maps (a no-op on the CPU).
  at::Tensor pr = probs.to(torch::kCPU, torch::kFloat).contiguous(),
             im = rgb.to(torch::kCPU, torch::kByte).contiguous();
  const int K = static_cast<int>(pr.size(0)), H = static_cast<int>(pr.size(1)), W = static_cast<int>(pr.size(2));
  std::vector<int32_t> l = dense_crf_labels(pr.data_ptr<float>(), K, H, W, im.data_ptr<uint8_t>(), p);
  return torch::from_blob(l.data(), {H, W}, torch::kInt).to(torch::kLong);
}

at::Tensor multiscale_logits(const model::ClipVision& vision, const model::Heads& heads, const at::Tensor& rgb,
                             const MultiScaleOptions& opt, const at::Tensor& base_pair_logits) {
  torch::NoGradGuard ng;
  const int64_t H = rgb.size(1), W = rgb.size(2);
  at::Tensor x = data::normalize_rgb(rgb).to(vision.device());
  // Logits [2,K,s/patch,s/patch] of [x; flip(x)] at a square side s.
  auto pair_logits = [&](int64_t side) {
    at::Tensor xs = resize_square(x, side);
    model::VisionOptions vo;
    vo.keep_attn = false;
    at::Tensor feats = vision.forward(torch::cat({xs, xs.flip({3})}), {}, vo).feats_all;
    const int64_t g = side / vision.config().patch;
    return heads.forward(feats, false, {}, g, g).logits;
  };
  at::Tensor sum;
  for (size_t i = 0; i < opt.sides.size(); ++i) {
    const bool reuse = i == 0 && base_pair_logits.defined();
    at::Tensor logits = model::upsample_logits(reuse ? base_pair_logits : pair_logits(opt.sides[i]), H, W);
    at::Tensor l = (i == 0 && !opt.flip_average_at_base)
                       ? logits.slice(0, 0, 1)
                       : (logits.slice(0, 0, 1) + logits.slice(0, 1, 2).flip({3})) / 2;
    sum = sum.defined() ? sum + l : l;
  }
  return sum / static_cast<double>(opt.sides.size());
}

}  // namespace excel::eval
