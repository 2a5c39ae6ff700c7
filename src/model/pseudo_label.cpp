#include "excel/model/pseudo_label.h"

#include <torch/torch.h>

#include <cmath>
#include <opencv2/imgproc.hpp>

#include "excel/common/errors.h"
#include "excel/data/pixel_norm.h"
#include "excel/model/clip_vision.h"
#include "excel/model/placement.h"

namespace excel::model {

namespace F = torch::nn::functional;

at::Tensor radius_mask(int64_t gh, int64_t gw, int64_t radius, at::Device device) {
  const auto o = torch::TensorOptions().dtype(torch::kLong).device(device);
  at::Tensor r = torch::arange(gh * gw, o).div(gw, "floor"), c = torch::arange(gh * gw, o).remainder(gw);
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

at::Tensor box_masks(const at::Tensor& maps, double tau) {
  torch::NoGradGuard ng;
  const int64_t n = maps.size(0), gh = maps.size(1), gw = maps.size(2), P = gh * gw;
  const auto opt = maps.options();
  // The CPU path's threshold: uint8(trunc(255 m)) > int(tau * max), the product in double.
  at::Tensor q = (maps.to(torch::kFloat) * 255.0f).to(torch::kByte).to(torch::kInt);
  at::Tensor thr = (q.amax({1, 2}, true).to(torch::kDouble) * tau).floor();
  at::Tensor fg = (q.to(torch::kDouble) > thr).to(torch::kFloat).unsqueeze(1);  // [n,1,gh,gw]
  // 8-connected components (the outer contours OpenCV traces; hole contours lie inside them):
  // every foreground cell takes the largest index in its 3x3 neighbourhood until nothing changes.
  at::Tensor lab = (torch::arange(1, P + 1, opt.dtype(torch::kFloat)).view({1, 1, gh, gw}) * fg).contiguous();
  const int64_t chunk = std::max<int64_t>(gh, gw);
  for (;;) {
    at::Tensor before = lab;
    for (int64_t i = 0; i < chunk; ++i) lab = torch::max_pool2d(lab, {3, 3}, {1, 1}, {1, 1}) * fg;
    if (torch::equal(lab, before)) break;  // one synchronisation per chunk of steps
  }
  // Per-component bounding boxes [min, max] over rows and columns (bucket 0: background).
  at::Tensor id = lab.view({n, 1, P}).to(torch::kLong);
  at::Tensor member = torch::zeros({n, P + 1, P}, opt.dtype(torch::kBool)).scatter_(1, id, true);  // [n,id,cell]
  at::Tensor cell = torch::arange(P, opt.dtype(torch::kLong));
  const at::Tensor row = cell.div(gw, "floor"), col = cell.remainder(gw);
  auto lo = [&](const at::Tensor& v, int64_t none) { return torch::where(member, v, none).amin(2); };
  auto hi = [&](const at::Tensor& v) { return torch::where(member, v, -1).amax(2); };
  at::Tensor y0 = lo(row, gh), x0 = lo(col, gw);
  at::Tensor y1 = (hi(row) + 1).clamp_max(gh - 1), x1 = (hi(col) + 1).clamp_max(gw - 1);
  at::Tensor valid = (y1 > y0) & (x1 > x0);  // the reference's end clamp (as box_mask)
  valid.select(1, 0).fill_(false);
  at::Tensor r = torch::arange(gh, opt.dtype(torch::kLong)).view({1, 1, gh, 1});
  at::Tensor c = torch::arange(gw, opt.dtype(torch::kLong)).view({1, 1, 1, gw});
  auto v = [](const at::Tensor& t) { return t.view({t.size(0), t.size(1), 1, 1}); };
  at::Tensor in_box = v(valid) & (r >= v(y0)) & (r < v(y1)) & (c >= v(x0)) & (c < v(x1));  // [n,P+1,gh,gw]
  return in_box.any(1).to(torch::kFloat);
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
  const at::Tensor present = labels.to(torch::kCPU, torch::kFloat).contiguous();  // one copy of C values
  const auto lab = present.accessor<float, 1>();
  for (int64_t c = 0; c < present.size(0); ++c)
    if (lab[c] >= 0.5f) out.classes.push_back(c);
  const int64_t n = static_cast<int64_t>(out.classes.size());
  if (n == 0) {
    out.maps = torch::zeros({0, gh, gw}, cam.options().dtype(torch::kFloat));
    return out;
  }
  if (torch_kernels(cam)) {  // the device path: every class at once
    at::Tensor idx = torch::tensor(out.classes).to(cam.device());
    at::Tensor m = cam.index_select(1, idx).t().reshape({n, gh, gw}).to(torch::kFloat);
    at::Tensor box = box_masks(m, tau).flatten(1);  // [n,P]
    out.maps = (T.unsqueeze(0) * box.unsqueeze(1)).matmul(m.flatten(1).unsqueeze(2)).view({n, gh, gw});
    return out;
  }
  std::vector<at::Tensor> maps;
  for (int64_t c : out.classes) {
    at::Tensor m = cam.select(1, c).reshape({gh, gw}).to(torch::kFloat);
    at::Tensor box = box_mask(m, tau).flatten();
    maps.push_back(torch::mv(T * box.unsqueeze(0), m.flatten()).view({gh, gw}));
  }
  out.maps = torch::stack(maps);
  return out;
}

at::Tensor cams_with_background(const at::Tensor& maps, int64_t H, int64_t W) {
  const int64_t n = maps.size(0);
  if (torch_kernels(maps)) {  // the device path: ATen's bilinear resize (OpenCV's sampling grid)
    at::Tensor out = torch::empty({n + 1, H, W}, maps.options().dtype(torch::kFloat));
    if (n == 0) return out.fill_(1);
    at::Tensor r = maps.to(torch::kFloat);
    r = r - r.amin({1, 2}, true);
    r = r / (r.amax({1, 2}, true) + 1e-7f);
    out.slice(0, 1).copy_(
        F::interpolate(
            r.unsqueeze(0),
            F::InterpolateFuncOptions().size(std::vector<int64_t>{H, W}).mode(torch::kBilinear).align_corners(false))
            .squeeze(0));
    out[0] = 1 - std::get<0>(out.slice(0, 1).max(0));
    return out;
  }
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
  at::Tensor pt = torch::tensor(pos).to(image.device());
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
  return torch::tensor(keys).to(arg.device()).index({arg});
}

at::Tensor pseudo_label(const RefinedCams& refined, const at::Tensor& par_image, int64_t H, int64_t W,
                        const ParOptions& opt) {
  at::Tensor cams = cams_with_background(refined.maps, H, W).unsqueeze(0);
  return labels_from_masks(par_refine(par_image, cams, opt), refined.classes);
}

at::Tensor affinity_labels(const at::Tensor& labels, const at::Tensor& radius, int64_t gh, int64_t gw) {
  const int64_t B = labels.size(0), H = labels.size(1), W = labels.size(2);
  auto nearest = [&labels](int64_t out, int64_t in) {
    const float scale = static_cast<float>(in) / static_cast<float>(out);
    std::vector<int64_t> idx;
    for (int64_t i = 0; i < out; ++i)
      idx.push_back(std::min(static_cast<int64_t>(std::floor(static_cast<float>(i) * scale)), in - 1));
    return torch::tensor(idx).to(labels.device());
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
  auto mean =
      torch::tensor({data::kPixelMean[0], data::kPixelMean[1], data::kPixelMean[2]}).to(x.device()).view({1, 3, 1, 1});
  auto std =
      torch::tensor({data::kPixelStd[0], data::kPixelStd[1], data::kPixelStd[2]}).to(x.device()).view({1, 3, 1, 1});
  return (x * std + mean).to(torch::kByte).to(torch::kFloat) / 255.0f;
}

}  // namespace excel::model
