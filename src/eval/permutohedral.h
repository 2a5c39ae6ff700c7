// Permutohedral lattice (Adams, Baek & Davis 2010): approximate Gaussian filtering
//   out_i = sum_j exp(-|f_i - f_j|^2 / 2) * in_j
// over d-dimensional features, up to a d-dependent constant factor (measured ~0.13 for d = 2,
// ~0.008 for d = 5; callers that normalise by the filtered ones, like the dense CRF, are
// unaffected by it). Private to src/eval.
#pragma once
#include <cstdint>
#include <vector>

namespace excel::eval {

class PermutohedralLattice {
 public:
  // features: n×d row-major. Builds the splat weights, the lattice vertices (open-addressing
  // hash) and the blur neighbours. Throws std::invalid_argument on n < 1, d < 1, null,
  // non-finite or huge (|f| ~ 1e8) features.
  void init(const float* features, int n, int d);

  // in, out: n×vd row-major (may alias). Splat, [1 2 1]/4 blur along the d+1 lattice
  // directions, slice.
  void filter(const float* in, float* out, int vd);

  int num_points() const { return n_; }
  int dim() const { return d_; }
  int num_vertices() const { return m_; }

 private:
  int n_ = 0, d_ = 0, m_ = 0;
  std::vector<int32_t> offset_;       // n×(d+1) vertex ids; 0 is a permanent zero row
  std::vector<float> weight_;         // n×(d+1) barycentric weights
  std::vector<int32_t> nbr_;          // (d+1)×(m+1)×2 blur neighbours per direction (0 = absent)
  std::vector<float> buf_a_, buf_b_;  // (m+1)×(vd padded) scratch, reused across calls
  std::vector<float> row_;            // one padded row
};

}  // namespace excel::eval
