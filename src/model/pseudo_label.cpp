#include "excel/model/pseudo_label.h"

#include <torch/torch.h>

#include <cmath>
#include <opencv2/imgproc.hpp>

#include "excel/common/errors.h"
#include "excel/data/pixel_norm.h"
#include "excel/model/clip_vision.h"

namespace excel::model {

namespace F = torch::nn::functional;

at::Tensor radius_mask(int64_t gh, int64_t gw, int64_t radius) {
  at::Tensor r = torch::arange(gh * gw).div(gw, "floor"), c = torch::arange(gh * gw).remainder(gw);
  at::Tensor dr = (r.unsqueeze(1) - r.unsqueeze(0)).abs(), dc = (c.unsqueeze(1) - c.unsqueeze(0)).abs();
  return ((dr <= radius) & (dc <= radius)).to(torch::kByte);
}

at::Tensor aggregate_attention(const at::Tensor& attn, const at::Tensor& G) {
  const int64_t L = attn.size(0);
  at::Tensor W = attn.slice(0, L - 6).slice(1, 1).slice(2, 1);  // [6,P,P]
  if (!G.defined()) return W.mean(0);
  at::Tensor d = (G.unsqueeze(0) - W).sum({1, 2});  // fp32 sums
  at::Tensor sel = (d <= d.mean()).to(torch::kFloat);
  at::Tensor A = (W * sel.view({-1, 1, 1})).sum(0) / (sel.sum() + 1e-5);
  return A * G;
}

at::Tensor transition_matrix(const at::Tensor& A) {
  at::Tensor T = A;
  for (int i = 0; i < 3; ++i) {
    T = T / T.sum(0, true);
    T = T / T.sum(1, true);
  }
  T = (T + T.t()) / 2;
  return torch::mm(T, T);
}

at::Tensor box_mask(const at::Tensor& map, double tau) {
  const int gh = static_cast<int>(map.size(0)), gw = static_cast<int>(map.size(1));
  at::Tensor q = (map.to(torch::kFloat).contiguous() * 255.0f).to(torch::kByte).contiguous();  // trunc
  const int qmax = q.max().item<int>();
  const int thr = static_cast<int>(tau * static_cast<double>(qmax));
  cv::Mat bin(gh, gw, CV_8UC1);
  const uint8_t* qp = q.data_ptr<uint8_t>();
  for (int i = 0; i < gh * gw; ++i) bin.data[i] = qp[i] > thr ? 255 : 0;
  std::vector<std::vector<cv::Point>> contours;
  std::vector<cv::Vec4i> hierarchy;
  cv::findContours(bin, contours, hierarchy, cv::RETR_TREE, cv::CHAIN_APPROX_SIMPLE);
  at::Tensor m = torch::zeros({gh, gw});
  for (const auto& c : contours) {
    cv::Rect r = cv::boundingRect(c);
    const int y1 = std::min(r.y + r.height, gh - 1), x1 = std::min(r.x + r.width, gw - 1);
    if (y1 > r.y && x1 > r.x) m.slice(0, r.y, y1).slice(1, r.x, x1).fill_(1);
  }
  return m;
}

AttentionAggregates attention_aggregates(const at::Tensor& attn) {
  const int64_t L = attn.size(0);
  at::Tensor W = attn.slice(0, L - 6).slice(1, 1).slice(2, 1);
  at::Tensor mass = W.sum({1, 2});
  at::Tensor sel = (mass >= mass.mean()).to(torch::kFloat);
  return {W.mean(0), (W * sel.view({-1, 1, 1})).sum(0) / (sel.sum() + 1e-5)};
}

RefinedCams refine_cams_with_affinity(const at::Tensor& cam, const at::Tensor& attn, const at::Tensor& labels,
                                      const at::Tensor& G, double tau, int64_t gh, int64_t gw) {
  return refine_cams_with_matrix(cam, aggregate_attention(attn, G), labels, tau, gh, gw);
}

RefinedCams refine_cams_with_matrix(const at::Tensor& cam, const at::Tensor& A, const at::Tensor& labels, double tau,
                                    int64_t gh, int64_t gw) {
  torch::NoGradGuard ng;
  at::Tensor T = transition_matrix(A);
  RefinedCams out;
  std::vector<at::Tensor> maps;
  for (int64_t c = 0; c < labels.size(0); ++c) {
    if (labels[c].item<float>() < 0.5f) continue;
    at::Tensor m = cam.select(1, c).reshape({gh, gw}).to(torch::kFloat);
    at::Tensor box = box_mask(m, tau).flatten();
    maps.push_back(torch::mv(T * box.unsqueeze(0), m.flatten()).view({gh, gw}));
    out.classes.push_back(c);
  }
  out.maps = maps.empty() ? torch::zeros({0, gh, gw}) : torch::stack(maps);
  return out;
}

at::Tensor cams_with_background(const at::Tensor& maps, int64_t H, int64_t W) {
  const int64_t n = maps.size(0);
  at::Tensor out = torch::empty({n + 1, H, W});
  for (int64_t i = 0; i < n; ++i) {
    at::Tensor r = maps[i].to(torch::kFloat).contiguous().clone();
    r = r - r.min();
    r = r / (1e-7f + r.max());
    r = r.contiguous();
    cv::Mat src(static_cast<int>(r.size(0)), static_cast<int>(r.size(1)), CV_32FC1, r.data_ptr<float>()), dst;
    cv::resize(src, dst, cv::Size(static_cast<int>(W), static_cast<int>(H)), 0, 0, cv::INTER_LINEAR);
    out[i + 1].copy_(torch::from_blob(dst.ptr<float>(), {H, W}, torch::kFloat));
  }
  if (n == 0) {
    out[0].fill_(1);
  } else {
    out[0] = 1 - std::get<0>(out.slice(0, 1).max(0));
  }
  return out;
}

namespace {

// [b,ch,H,W] -> [b,ch,8*len(d),H,W]: replicate-padded neighbours in the reference order.
at::Tensor dilated_neighbours(const at::Tensor& x, const std::vector<int64_t>& dilations) {
  const int64_t H = x.size(2), W = x.size(3);
  static const int dr[8] = {-1, -1, -1, 0, 0, 1, 1, 1}, dc[8] = {-1, 0, 1, -1, 1, -1, 0, 1};
  std::vector<at::Tensor> parts;
  for (int64_t d : dilations) {
    at::Tensor p = F::pad(x, F::PadFuncOptions({d, d, d, d}).mode(torch::kReplicate));
    for (int k = 0; k < 8; ++k)
      parts.push_back(p.slice(2, d + dr[k] * d, d + dr[k] * d + H).slice(3, d + dc[k] * d, d + dc[k] * d + W));
  }
  return torch::stack(parts, 2);
}

}  // namespace

at::Tensor par_refine(const at::Tensor& image_in, const at::Tensor& masks_in, const ParOptions& opt) {
  torch::NoGradGuard ng;
  at::Tensor masks = masks_in.to(torch::kFloat);
  const int64_t H = masks.size(2), W = masks.size(3);
  at::Tensor image = image_in.to(torch::kFloat);
  if (image.size(2) != H || image.size(3) != W)
    image = F::interpolate(
        image, F::InterpolateFuncOptions().size(std::vector<int64_t>{H, W}).mode(torch::kBilinear).align_corners(true));
  const int64_t K = 8 * static_cast<int64_t>(opt.dilations.size());
  at::Tensor nb = dilated_neighbours(image, opt.dilations);  // [1,3,K,H,W]
  at::Tensor sigma = nb.std(2, /*unbiased=*/true, /*keepdim=*/true);
  at::Tensor a = -((nb - image.unsqueeze(2)).abs() / (sigma + 1e-8) / opt.w1).pow(2);
  a = a.mean(1, true);  // [1,1,K,H,W]
  std::vector<float> pos;
  for (int64_t d : opt.dilations)
    for (int k = 0; k < 8; ++k)
      pos.push_back(static_cast<float>((k == 0 || k == 2 || k == 5 || k == 7) ? d * std::sqrt(2.0) : d));
  at::Tensor pt = torch::tensor(pos);
  at::Tensor pos_aff = torch::softmax(-(pt / (pt.std(0, true) + 1e-8) / opt.w1).pow(2), 0).view({1, 1, K, 1, 1});
  // [K,1,1,H,W]: one contiguous weight map per neighbour.
  at::Tensor aff =
      (torch::softmax(a, 2) + opt.w2 * pos_aff).squeeze(0).squeeze(0).unsqueeze(1).unsqueeze(1).contiguous();
  // Propagation accumulates shifted copies in place instead of materialising the K neighbours.
  static const int dr[8] = {-1, -1, -1, 0, 0, 1, 1, 1}, dc[8] = {-1, 0, 1, -1, 1, -1, 0, 1};
  for (int it = 0; it < opt.iterations; ++it) {
    at::Tensor next = torch::zeros_like(masks);
    int64_t k = 0;
    for (int64_t d : opt.dilations) {
      at::Tensor p = F::pad(masks, F::PadFuncOptions({d, d, d, d}).mode(torch::kReplicate));
      for (int j = 0; j < 8; ++j, ++k)
        next.addcmul_(p.slice(2, d + dr[j] * d, d + dr[j] * d + H).slice(3, d + dc[j] * d, d + dc[j] * d + W), aff[k]);
    }
    masks = next;
  }
  return masks;
}

at::Tensor labels_from_masks(const at::Tensor& refined, const std::vector<int64_t>& classes) {
  std::vector<int64_t> keys = {0};
  for (int64_t c : classes) keys.push_back(c + 1);
  at::Tensor arg = refined.squeeze(0).argmax(0);
  return torch::tensor(keys).index({arg});
}

at::Tensor pseudo_label(const RefinedCams& refined, const at::Tensor& par_image, int64_t H, int64_t W,
                        const ParOptions& opt) {
  at::Tensor cams = cams_with_background(refined.maps, H, W).unsqueeze(0);
  return labels_from_masks(par_refine(par_image, cams, opt), refined.classes);
}

at::Tensor affinity_labels(const at::Tensor& labels, const at::Tensor& radius, int64_t gh, int64_t gw) {
  const int64_t B = labels.size(0), H = labels.size(1), W = labels.size(2);
  auto nearest = [](int64_t out, int64_t in) {
    const float scale = static_cast<float>(in) / static_cast<float>(out);
    std::vector<int64_t> idx;
    for (int64_t i = 0; i < out; ++i)
      idx.push_back(std::min(static_cast<int64_t>(std::floor(static_cast<float>(i) * scale)), in - 1));
    return torch::tensor(idx);
  };
  at::Tensor l =
      labels.to(torch::kLong).index_select(1, nearest(gh, H)).index_select(2, nearest(gw, W)).reshape({B, gh * gw});
  at::Tensor aff = (l.unsqueeze(2) == l.unsqueeze(1)).to(torch::kByte);
  aff.masked_fill_((radius == 0).unsqueeze(0), 255);
  at::Tensor ign = (l == 255);
  aff.masked_fill_(ign.unsqueeze(2) | ign.unsqueeze(1), 255);
  return aff;
}

at::Tensor denormalize_for_par(const at::Tensor& x) {
  auto mean = torch::tensor({data::kPixelMean[0], data::kPixelMean[1], data::kPixelMean[2]}).view({1, 3, 1, 1});
  auto std = torch::tensor({data::kPixelStd[0], data::kPixelStd[1], data::kPixelStd[2]}).view({1, 3, 1, 1});
  return (x * std + mean).to(torch::kByte).to(torch::kFloat) / 255.0f;
}

}  // namespace excel::model
