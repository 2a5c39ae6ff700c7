#include "excel/data/pillow_resize.h"

#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <vector>

namespace excel::data {
namespace {

constexpr int kPrecisionBits = 22;

// Pillow's precompute_coeffs for the bilinear filter, as fixed-point taps.
void coefficients(int64_t in, int64_t out, std::vector<int64_t>& bounds, std::vector<int32_t>& kk, int64_t& ksize) {
  const double scale = static_cast<double>(in) / static_cast<double>(out);
  const double fs = std::max(scale, 1.0), support = fs;
  ksize = static_cast<int64_t>(std::ceil(support)) * 2 + 1;
  bounds.assign(static_cast<size_t>(out) * 2, 0);
  kk.assign(static_cast<size_t>(out * ksize), 0);
  std::vector<double> w(static_cast<size_t>(ksize));
  for (int64_t o = 0; o < out; ++o) {
    const double center = (static_cast<double>(o) + 0.5) * scale;
    int64_t xmin = static_cast<int64_t>(center - support + 0.5);
    if (xmin < 0) xmin = 0;
    int64_t xmax = static_cast<int64_t>(center + support + 0.5);
    if (xmax > in) xmax = in;
    xmax -= xmin;
    double ww = 0;
    for (int64_t x = 0; x < xmax; ++x) {
      double t = std::abs((static_cast<double>(x + xmin) - center + 0.5) / fs);
      w[static_cast<size_t>(x)] = t < 1 ? 1 - t : 0;
      ww += w[static_cast<size_t>(x)];
    }
    for (int64_t x = 0; x < xmax; ++x) {
      double k = ww != 0 ? w[static_cast<size_t>(x)] / ww : w[static_cast<size_t>(x)];
      kk[static_cast<size_t>(o * ksize + x)] =
          static_cast<int32_t>(k < 0 ? -0.5 + k * (1 << kPrecisionBits) : 0.5 + k * (1 << kPrecisionBits));
    }
    bounds[static_cast<size_t>(2 * o)] = xmin;
    bounds[static_cast<size_t>(2 * o + 1)] = xmax;
  }
}

uint8_t clip8(int64_t v) {
  v >>= kPrecisionBits;
  return static_cast<uint8_t>(v < 0 ? 0 : v > 255 ? 255 : v);
}

// One pass of Pillow's separable resampling of HWC uint8 along `axis` (1: columns, then 0: rows),
// with fixed-point taps accumulated in Pillow's order.
at::Tensor resample_pass(const at::Tensor& src, int axis, int64_t out_size) {
  const int64_t H = src.size(0), W = src.size(1), C = src.size(2);
  std::vector<int64_t> b;
  std::vector<int32_t> k;
  int64_t ks;
  coefficients(axis == 0 ? H : W, out_size, b, k, ks);
  const int64_t oh = axis == 0 ? out_size : H, ow = axis == 0 ? W : out_size;
  const int64_t step = axis == 0 ? W * C : C;  // from one source pixel to the next along the axis
  at::Tensor res = torch::empty({oh, ow, C}, torch::kByte);
  const uint8_t* in = src.data_ptr<uint8_t>();
  uint8_t* out = res.data_ptr<uint8_t>();
  for (int64_t y = 0; y < oh; ++y)
    for (int64_t x = 0; x < ow; ++x) {
      const int64_t i = axis == 0 ? y : x;  // output index along the axis
      const int64_t first = b[2 * i], n = b[2 * i + 1];
      const uint8_t* base = in + (axis == 0 ? (first * W + x) * C : (y * W + first) * C);
      for (int64_t c = 0; c < C; ++c) {
        int64_t acc = 1 << (kPrecisionBits - 1);
        for (int64_t t = 0; t < n; ++t) acc += static_cast<int64_t>(base[t * step + c]) * k[i * ks + t];
        out[(y * ow + x) * C + c] = clip8(acc);
      }
    }
  return res;
}

}  // namespace

at::Tensor pillow_resize_bilinear(const at::Tensor& img, int64_t oh, int64_t ow) {
  at::Tensor res = img.contiguous();
  if (ow != res.size(1)) res = resample_pass(res, 1, ow);  // horizontal pass first, as Pillow
  if (oh != res.size(0)) res = resample_pass(res, 0, oh);
  return res.clone();
}

namespace {

// Pillow 9.4's Image.resize(size, NEAREST) is an affine transform (_imaging.c `_resize`: a[0] =
// in_w / out_w, a[4] = in_h / out_h) run by Geometry.c's ImagingScaleAffine, which tabulates the
// source index by accumulation: xo = a * 0.5, then xo += a per output pixel, the index being
// (int) xo. The accumulated double drifts from (i + 0.5) * a, so where the exact value is an
// integer (54 -> 61 rows: 30.5 * 54 / 61 = 27) it may land just below it (26). Reproduced here
// step for step, in double precision, as Pillow does it.
std::vector<int64_t> pillow_nearest_indices(int64_t in, int64_t out) {
  const double a = static_cast<double>(in) / static_cast<double>(out);
  std::vector<int64_t> idx(static_cast<size_t>(out));
  double xo = a * 0.5;
  for (int64_t i = 0; i < out; ++i) {
    const int64_t v = xo < 0.0 ? -1 : static_cast<int64_t>(xo);
    idx[static_cast<size_t>(i)] = std::min(std::max<int64_t>(v, 0), in - 1);
    xo += a;
  }
  return idx;
}

}  // namespace

at::Tensor pillow_resize_nearest(const at::Tensor& lab, int64_t oh, int64_t ow) {
  const int64_t H = lab.size(0), W = lab.size(1);
  if (oh == H && ow == W) return lab.contiguous().clone();  // Pillow copies an unchanged size
  const std::vector<int64_t> ys = pillow_nearest_indices(H, oh), xs = pillow_nearest_indices(W, ow);
  return lab.index_select(0, torch::tensor(ys)).index_select(1, torch::tensor(xs)).contiguous();
}

}  // namespace excel::data
