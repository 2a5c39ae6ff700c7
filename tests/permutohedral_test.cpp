// eval/permutohedral (src/eval/permutohedral.cpp, private to src/eval): the lattice against an
// explicit Gaussian filter, symmetry away from the lattice boundary, multichannel and in-place runs.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <random>
#include <vector>

#include "../src/eval/permutohedral.h"
#include "crf_test_images.h"

using excel::eval::PermutohedralLattice;
using excel::test::features;
using excel::test::smooth_image;

namespace {

// Exact sum_j exp(-|f_i - f_j|^2 / (2 sigma^2)) v_j (self included), n×vd values.
std::vector<double> brute_filter(const std::vector<float>& f, int n, int d, const std::vector<double>& v, int vd,
                                 double sigma = 1) {
  std::vector<double> out(size_t(n) * vd, 0.0);
  for (int i = 0; i < n; ++i)
    for (int j = 0; j < n; ++j) {
      const double q = excel::test::squared_distance(f, d, i, j);
      const double k = std::exp(-q / (2 * sigma * sigma));
      for (int c = 0; c < vd; ++c) out[size_t(i) * vd + c] += k * v[size_t(j) * vd + c];
    }
  return out;
}

struct FilterAgreement {
  double corr;      // Pearson correlation of lattice vs exact filter of zero-mean values
  double norm_err;  // ||L(v)/L(1) - B(v)/B(1)|| / ||B(v)/B(1)|| (scale-free)
};

FilterAgreement compare_filters(const std::vector<float>& f, int n, int d, double sigma) {
  std::mt19937 rng(7);
  std::uniform_real_distribution<float> u(-1.f, 1.f);
  std::vector<float> v(n), ones(n, 1.f), lv(n), l1(n);
  for (float& x : v) x = u(rng);
  PermutohedralLattice lat;
  lat.init(f.data(), n, d);
  lat.filter(v.data(), lv.data(), 1);
  lat.filter(ones.data(), l1.data(), 1);
  const std::vector<double> bv = brute_filter(f, n, d, std::vector<double>(v.begin(), v.end()), 1, sigma);
  const std::vector<double> b1 = brute_filter(f, n, d, std::vector<double>(n, 1.0), 1, sigma);
  double ml = 0, mb = 0;
  for (int i = 0; i < n; ++i) ml += lv[i] / n, mb += bv[i] / n;
  double slb = 0, sll = 0, sbb = 0, ne = 0, nd = 0;
  for (int i = 0; i < n; ++i) {
    slb += (lv[i] - ml) * (bv[i] - mb);
    sll += (lv[i] - ml) * (lv[i] - ml);
    sbb += (bv[i] - mb) * (bv[i] - mb);
    const double a = lv[i] / l1[i], b = bv[i] / b1[i];
    ne += (a - b) * (a - b);
    nd += b * b;
  }
  return {slb / std::sqrt(sll * sbb), std::sqrt(ne / nd)};
}

}  // namespace

TEST(PermutohedralTest, approximates_explicit_gaussian_filter) {
  const int H = 20, W = 24, n = H * W;
  const std::vector<uint8_t> rgb = smooth_image(H, W, 12.f, 1);
  // The 5-D lattice is coarse: agreement degrades when few points fall within one sigma (measured
  // corr 0.96-0.99 over sxy 1-6, srgb 4-32), so the d = 5 case uses a moderately dense setting.
  // Bounds are the measured figures with margin, and fail for a sigma = 1.5 reference.
  struct Case {
    int d;
    float sxy, srgb;
    double min_corr, max_err;
  };
  for (const Case& c : {Case{2, 2.f, 1.f, 0.99, 0.12}, Case{5, 6.f, 32.f, 0.98, 0.18}}) {
    const std::vector<float> f = features(rgb, H, W, c.d, c.sxy, c.srgb);
    const FilterAgreement a = compare_filters(f, n, c.d, 1.0);
    const FilterAgreement wide = compare_filters(f, n, c.d, 1.5);
    std::printf("[measured] d=%d corr=%.4f norm_err=%.4f | vs sigma 1.5: corr=%.4f norm_err=%.4f\n", c.d, a.corr,
                a.norm_err, wide.corr, wide.norm_err);
    EXPECT_GT(a.corr, c.min_corr) << "d=" << c.d;
    EXPECT_LT(a.norm_err, c.max_err) << "d=" << c.d;
    EXPECT_GT(wide.norm_err, c.max_err) << "bound does not discriminate, d=" << c.d;
  }
}

TEST(PermutohedralTest, symmetric_away_from_lattice_boundary_and_multichannel_in_place) {
  // Blurs along different directions commute except where the sparse lattice ends, so the
  // operator is symmetric between interior points (measured 6e-8 relative; ~4% with borders).
  const int H = 40, W = 40, n = H * W, B = 12;
  const std::vector<float> f = features(smooth_image(H, W, 8.f, 4), H, W, 2, 2.f, 1.f);
  PermutohedralLattice lat;
  lat.init(f.data(), n, 2);
  std::vector<int> inner;
  for (int y = B; y < H - B; ++y)
    for (int x = B; x < W - B; ++x) inner.push_back(y * W + x);
  const size_t m = inner.size();
  std::vector<float> e(n, 0.f), o(n), M(m * m);  // M[a][b] = response at inner[a] to impulse at inner[b]
  for (size_t b = 0; b < m; ++b) {
    e[inner[b]] = 1.f;
    lat.filter(e.data(), o.data(), 1);
    e[inner[b]] = 0.f;
    for (size_t a = 0; a < m; ++a) M[a * m + b] = o[inner[a]];
  }
  double asym = 0, norm = 0;
  for (size_t a = 0; a < m; ++a)
    for (size_t b = 0; b < m; ++b) {
      asym += std::pow(M[a * m + b] - M[b * m + a], 2);
      norm += std::pow(M[a * m + b], 2);
    }
  EXPECT_LT(std::sqrt(asym / norm), 1e-5);

  const int vd = 3;  // channel 1 alone, and an in-place run, match the multichannel run
  std::mt19937 rng(8);
  std::uniform_real_distribution<float> u(-1.f, 1.f);
  std::vector<float> x(size_t(n) * vd), lx(x.size()), ch(n), lch(n);
  for (float& v : x) v = u(rng);
  lat.filter(x.data(), lx.data(), vd);
  for (int i = 0; i < n; ++i) ch[i] = x[size_t(i) * vd + 1];
  lat.filter(ch.data(), lch.data(), 1);
  for (int i = 0; i < n; ++i) EXPECT_NEAR(lch[i], lx[size_t(i) * vd + 1], 1e-6f);
  lat.filter(x.data(), x.data(), vd);
  EXPECT_EQ(x, lx);
}
