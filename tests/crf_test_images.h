// Test images for the dense CRF and the permutohedral lattice tests: a smooth colour field with
// noise, and its spatial or bilateral features in pydensecrf's layout.
#pragma once
#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

namespace excel::test {

// Smooth colour field plus uniform noise of +-noise, H×W×3.
inline std::vector<uint8_t> smooth_image(int H, int W, float noise, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> u(-1.f, 1.f);
  std::vector<uint8_t> rgb(size_t(H) * W * 3);
  for (int y = 0; y < H; ++y)
    for (int x = 0; x < W; ++x)
      for (int c = 0; c < 3; ++c) {
        const float v = 128 + 70 * std::sin(0.25f * x + 0.15f * y + 2.f * c) + noise * u(rng);
        rgb[(size_t(y) * W + x) * 3 + c] = uint8_t(std::fmin(255.f, std::fmax(0.f, v)));
      }
  return rgb;
}

// Bilateral (d = 5) or spatial (d = 2) features, pydensecrf layout.
inline std::vector<float> features(const std::vector<uint8_t>& rgb, int H, int W, int d, float sxy, float srgb) {
  std::vector<float> f(size_t(H) * W * d);
  for (int y = 0; y < H; ++y)
    for (int x = 0; x < W; ++x) {
      const size_t i = size_t(y) * W + x;
      f[i * d] = x / sxy;
      f[i * d + 1] = y / sxy;
      for (int c = 2; c < d; ++c) f[i * d + c] = rgb[i * 3 + c - 2] / srgb;
    }
  return f;
}

// Squared distance between the feature rows i and j (d values each): the exponent of the exact
// Gaussian kernel that the brute-force references compute.
inline double squared_distance(const std::vector<float>& f, int d, int i, int j) {
  double q = 0;
  for (int c = 0; c < d; ++c) {
    const double t = double(f[size_t(i) * d + c]) - f[size_t(j) * d + c];
    q += t * t;
  }
  return q;
}

}  // namespace excel::test
