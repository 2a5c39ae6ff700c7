#include "excel/eval/dense_crf.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>

#include "permutohedral.h"

namespace excel::eval {
namespace {

[[noreturn]] void bad(const std::string& what) {
  throw std::invalid_argument("dense_crf: " + what);
}

void validate(const float* probs, int K, int H, int W, const uint8_t* rgb, const DenseCrfParams& p) {
  if (K < 1) bad("K must be >= 1, got " + std::to_string(K));
  if (H < 1 || W < 1) bad("H and W must be >= 1, got " + std::to_string(H) + "x" + std::to_string(W));
  if (int64_t(H) * W > INT32_MAX / 8) bad("image too large");
  if (!probs) bad("probs is null");
  if (!rgb) bad("rgb is null");
  if (p.iterations < 0) bad("iterations must be >= 0");
  auto width_ok = [](float s) { return std::isfinite(s) && s > 0; };
  if (!width_ok(p.gauss_sxy) || !width_ok(p.bilateral_sxy) || !width_ok(p.bilateral_srgb))
    bad("kernel widths (sxy, srgb) must be finite and > 0");
  if (!std::isfinite(p.gauss_compat) || !std::isfinite(p.bilateral_compat)) bad("compat must be finite");
}

// One pairwise term: lattice, symmetric normalisation and Potts weight.
struct Kernel {
  PermutohedralLattice lattice;
  std::vector<float> norm;
  float compat = 0;

  void init(const std::vector<float>& feat, int n, int d, float w) {
    compat = w;
    lattice.init(feat.data(), n, d);
    norm.assign(size_t(n), 1.f);
    lattice.filter(norm.data(), norm.data(), 1);
    for (float& v : norm) v = 1.f / std::sqrt(v + 1e-20f);
  }

  // acc[i,c] += compat * norm_i * (k * (norm .* Q))[i,c]; tmp: n×K scratch.
  void add_message(const std::vector<float>& Q, std::vector<float>& tmp, std::vector<float>& acc, int K) {
    const size_t n = norm.size();
    for (size_t i = 0; i < n; ++i)
      for (int c = 0; c < K; ++c) tmp[i * K + c] = norm[i] * Q[i * K + c];
    lattice.filter(tmp.data(), tmp.data(), K);
    for (size_t i = 0; i < n; ++i) {
      const float s = compat * norm[i];
      for (int c = 0; c < K; ++c) acc[i * K + c] += s * tmp[i * K + c];
    }
  }
};

// Q[i,:] = softmax(x[i,:]) for each of n rows of K.
void softmax_rows(const std::vector<float>& x, std::vector<float>& Q, size_t n, int K) {
  for (size_t i = 0; i < n; ++i) {
    const float* xi = &x[i * K];
    float* qi = &Q[i * K];
    const float mx = *std::max_element(xi, xi + K);
    float sum = 0;
    for (int c = 0; c < K; ++c) sum += (qi[c] = std::exp(xi[c] - mx));
    const float inv = 1.f / sum;
    for (int c = 0; c < K; ++c) qi[c] *= inv;
  }
}

}  // namespace

std::vector<float> dense_crf_inference(const float* probs, int K, int H, int W, const uint8_t* rgb,
                                       const DenseCrfParams& p) {
  validate(probs, K, H, W, rgb, p);
  const size_t n = size_t(H) * W, nk = n * K;
  // Pixel-major working layout [n][K]; -U = log(clip(prob)).
  std::vector<float> neg_u(nk);
  for (int c = 0; c < K; ++c)
    for (size_t i = 0; i < n; ++i) {
      const float v = probs[size_t(c) * n + i];
      if (std::isnan(v)) bad("probs contains NaN");
      neg_u[i * K + c] = std::log(std::min(std::max(v, 1e-5f), 1.f));
    }
  std::vector<float> Q(nk);
  softmax_rows(neg_u, Q, n, K);

  if (K > 1 && p.iterations > 0) {
    std::vector<Kernel> kernels;
    std::vector<float> feat;
    if (p.gauss_compat != 0) {
      feat.resize(n * 2);
      for (int y = 0; y < H; ++y)
        for (int x = 0; x < W; ++x) {
          float* f = &feat[(size_t(y) * W + x) * 2];
          f[0] = x / p.gauss_sxy;
          f[1] = y / p.gauss_sxy;
        }
      kernels.emplace_back();
      kernels.back().init(feat, int(n), 2, p.gauss_compat);
    }
    if (p.bilateral_compat != 0) {
      feat.resize(n * 5);
      for (int y = 0; y < H; ++y)
        for (int x = 0; x < W; ++x) {
          const size_t i = size_t(y) * W + x;
          float* f = &feat[i * 5];
          f[0] = x / p.bilateral_sxy;
          f[1] = y / p.bilateral_sxy;
          for (int ch = 0; ch < 3; ++ch) f[2 + ch] = rgb[i * 3 + ch] / p.bilateral_srgb;
        }
      kernels.emplace_back();
      kernels.back().init(feat, int(n), 5, p.bilateral_compat);
    }
    std::vector<float> acc(nk), tmp(nk);
    for (int it = 0; it < p.iterations && !kernels.empty(); ++it) {
      acc = neg_u;
      for (Kernel& k : kernels) k.add_message(Q, tmp, acc, K);
      softmax_rows(acc, Q, n, K);
    }
  }

  std::vector<float> out(nk);
  for (size_t i = 0; i < n; ++i)
    for (int c = 0; c < K; ++c) out[size_t(c) * n + i] = Q[i * K + c];
  return out;
}

std::vector<float> dense_crf_inference(const std::vector<float>& probs, int K, int H, int W,
                                       const std::vector<uint8_t>& rgb, const DenseCrfParams& p) {
  if (K >= 1 && H >= 1 && W >= 1) {
    const size_t n = size_t(H) * W;
    if (probs.size() != n * K)
      bad("probs has " + std::to_string(probs.size()) + " values, expected K*H*W = " + std::to_string(n * K));
    if (rgb.size() != n * 3)
      bad("rgb has " + std::to_string(rgb.size()) + " values, expected H*W*3 = " + std::to_string(n * 3));
  }
  return dense_crf_inference(probs.data(), K, H, W, rgb.data(), p);
}

namespace {
std::vector<int32_t> argmax_classes(const std::vector<float>& q, int K, size_t n) {
  std::vector<int32_t> labels(n, 0);
  for (size_t i = 0; i < n; ++i) {
    float best = q[i];
    for (int c = 1; c < K; ++c)
      if (q[size_t(c) * n + i] > best) {
        best = q[size_t(c) * n + i];
        labels[i] = c;
      }
  }
  return labels;
}
}  // namespace

std::vector<int32_t> dense_crf_labels(const float* probs, int K, int H, int W, const uint8_t* rgb,
                                      const DenseCrfParams& p) {
  return argmax_classes(dense_crf_inference(probs, K, H, W, rgb, p), K, size_t(H) * W);
}

std::vector<int32_t> dense_crf_labels(const std::vector<float>& probs, int K, int H, int W,
                                      const std::vector<uint8_t>& rgb, const DenseCrfParams& p) {
  return argmax_classes(dense_crf_inference(probs, K, H, W, rgb, p), K, size_t(H) * W);
}

}  // namespace excel::eval
