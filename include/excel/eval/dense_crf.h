// Fully connected CRF (Krähenbühl & Koltun 2011) with pydensecrf semantics (§10.3): unary
// -log(clip(prob, 1e-5, 1)); Potts compatibilities; a Gaussian kernel on (x, y)/sxy and a
// bilateral kernel on ((x, y)/sxy, rgb/srgb), each with symmetric normalisation; mean-field
// inference from Q = softmax(-U):
//   Q <- softmax(-U + sum_m compat_m * n_m .* (k_m * (n_m .* Q))),  n_m = 1/sqrt(k_m * 1 + 1e-20)
// where k_m * is permutohedral-lattice filtering (self term included, as in pydensecrf).
// Plain C++17, single-threaded, deterministic.
#pragma once
#include <cstdint>
#include <vector>

namespace excel::eval {

struct DenseCrfParams {
  int iterations = 10;
  float gauss_sxy = 1, gauss_compat = 3;
  float bilateral_sxy = 67, bilateral_srgb = 3, bilateral_compat = 4;
};

// probs: K×H×W row-major class probabilities (need not be normalised); rgb: H×W×3 uint8
// interleaved. Returns the K×H×W marginals Q after inference. Throws std::invalid_argument on
// K, H, W < 1, null pointers, NaN probabilities, iterations < 0, non-positive or non-finite
// kernel widths, non-finite compatibilities.
std::vector<float> dense_crf_inference(const float* probs, int K, int H, int W, const uint8_t* rgb,
                                       const DenseCrfParams& p = {});
// Same, with the sizes checked: probs.size() == K*H*W, rgb.size() == H*W*3.
std::vector<float> dense_crf_inference(const std::vector<float>& probs, int K, int H, int W,
                                       const std::vector<uint8_t>& rgb, const DenseCrfParams& p = {});

// Argmax over K of the marginals (first maximum on ties): H×W labels.
std::vector<int32_t> dense_crf_labels(const float* probs, int K, int H, int W, const uint8_t* rgb,
                                      const DenseCrfParams& p = {});
std::vector<int32_t> dense_crf_labels(const std::vector<float>& probs, int K, int H, int W,
                                      const std::vector<uint8_t>& rgb, const DenseCrfParams& p = {});

}  // namespace excel::eval
