#include "permutohedral.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <utility>

namespace excel::eval {
namespace {

// Open-addressing (linear probing) map from a d-int key to a 1-based vertex id. Each slot holds
// [id, key...] so a probe touches one place; grows to keep the load factor <= 1/2.
class VertexTable {
 public:
  VertexTable(int d, size_t expected) : d_(d), w_(size_t(d) + 1) {
    keys_.reserve((expected + 1) * size_t(d));
    keys_.resize(size_t(d), 0);  // id 0: unused placeholder
    rehash(expected * 2);
  }

  // Returns the id of key; inserts it if absent and insert is true, else returns 0.
  int32_t find(const int32_t* key, bool insert) {
    for (size_t h = hash(key) & mask_;; h = (h + 1) & mask_) {
      int32_t* slot = &slots_[h * w_];
      if (slot[0] == 0) {
        if (!insert) return 0;
        keys_.insert(keys_.end(), key, key + d_);
        const int32_t id = size();
        if (size_t(id) * 2 > mask_ + 1) {
          rehash((mask_ + 1) * 2);
        } else {
          slot[0] = id;
          std::copy(key, key + d_, slot + 1);
        }
        return id;
      }
      int i = 0;
      while (i < d_ && slot[1 + i] == key[i]) ++i;
      if (i == d_) return slot[0];
    }
  }

  int32_t size() const { return int32_t(keys_.size() / d_) - 1; }
  const int32_t* key(int32_t id) const { return &keys_[size_t(id) * d_]; }

 private:
  size_t hash(const int32_t* key) const {
    uint64_t h = 0;
    for (int i = 0; i < d_; ++i) h = (h + uint32_t(key[i])) * 0x9E3779B97F4A7C15ull;
    h ^= h >> 31;  // bring the well-mixed high bits down to the masked low bits
    h *= 0xBF58476D1CE4E5B9ull;
    return size_t(h ^ (h >> 29));
  }

  // Resize to at least cap slots (a power of two) and re-insert every stored id.
  void rehash(size_t cap) {
    size_t c = 16;
    while (c < cap) c <<= 1;
    slots_.assign(c * w_, 0);
    mask_ = c - 1;
    for (int32_t id = 1; id <= size(); ++id) {
      size_t h = hash(key(id)) & mask_;
      while (slots_[h * w_] != 0) h = (h + 1) & mask_;
      slots_[h * w_] = id;
      std::copy(key(id), key(id) + d_, &slots_[h * w_ + 1]);
    }
  }

  int d_;
  size_t w_;  // slot width: id + d key ints
  size_t mask_ = 0;
  std::vector<int32_t> slots_;
  std::vector<int32_t> keys_;  // by id, for iteration
};

}  // namespace

void PermutohedralLattice::init(const float* features, int n, int d) {
  if (n < 1 || d < 1) throw std::invalid_argument("PermutohedralLattice: need n >= 1 and d >= 1");
  if (!features) throw std::invalid_argument("PermutohedralLattice: features is null");
  const int d1 = d + 1;
  n_ = d_ = m_ = 0;  // unusable until init completes
  offset_.assign(size_t(n) * d1, 0);
  weight_.assign(size_t(n) * d1, 0.f);

  // Scale so that splat + blur + slice approximates a unit-variance Gaussian (the paper's
  // sqrt(2/3)(d+1)), folded into the orthonormal basis of the hyperplane sum(x) = 0.
  std::vector<double> scale(d), cf(d), elev(d1), bary(d1 + 1);
  std::vector<int32_t> rem0(d1), rank(d1), key(d);
  const double inv_std = std::sqrt(2.0 / 3.0) * d1;
  for (int i = 0; i < d; ++i) scale[i] = inv_std / std::sqrt(double(i + 1) * (i + 2));

  VertexTable table(d, size_t(n));
  for (int p = 0; p < n; ++p) {
    const float* f = features + size_t(p) * d;
    for (int i = 0; i < d; ++i) {
      if (!std::isfinite(f[i])) throw std::invalid_argument("PermutohedralLattice: non-finite feature");
      cf[i] = f[i] * scale[i];
    }
    // Elevate: elev[k] = sum_{i>=k} cf[i] - k * cf[k-1].
    double suffix = 0;
    for (int k = d; k >= 0; --k) {
      elev[k] = suffix - (k > 0 ? k * cf[k - 1] : 0.0);
      if (k > 0) suffix += cf[k - 1];
    }
    // Nearest point with all coordinates multiples of d+1, then rank the residuals.
    int sum = 0;
    for (int i = 0; i <= d; ++i) {
      const double v = elev[i] / d1, lo = std::floor(v), hi = std::ceil(v);
      if (!(std::fabs(v) < 1e8)) throw std::invalid_argument("PermutohedralLattice: feature magnitude too large");
      const int r = (hi * d1 - elev[i] < elev[i] - lo * d1) ? int(hi) : int(lo);
      rem0[i] = r * d1;
      sum += r;
      rank[i] = 0;
    }
    for (int i = 0; i < d; ++i)
      for (int j = i + 1; j <= d; ++j) {
        if (elev[i] - rem0[i] < elev[j] - rem0[j])
          ++rank[i];
        else
          ++rank[j];
      }
    // Move onto the hyperplane: shift the |sum| coordinates with the extreme residuals.
    if (sum > 0) {
      for (int i = 0; i <= d; ++i) {
        if (rank[i] >= d1 - sum) {
          rem0[i] -= d1;
          rank[i] += sum - d1;
        } else
          rank[i] += sum;
      }
    } else if (sum < 0) {
      for (int i = 0; i <= d; ++i) {
        if (rank[i] < -sum) {
          rem0[i] += d1;
          rank[i] += d1 + sum;
        } else
          rank[i] += sum;
      }
    }
    // Barycentric weights of the enclosing simplex.
    for (int k = 0; k <= d1; ++k) bary[k] = 0;
    for (int i = 0; i <= d; ++i) {
      const double v = (elev[i] - rem0[i]) / d1;
      bary[d - rank[i]] += v;
      bary[d1 - rank[i]] -= v;
    }
    bary[0] += 1.0 + bary[d1];
    // Simplex vertex k (remainder k); only the first d coordinates are stored.
    for (int k = 0; k <= d; ++k) {
      for (int i = 0; i < d; ++i) key[i] = rem0[i] + (rank[i] <= d - k ? k : k - d1);
      offset_[size_t(p) * d1 + k] = table.find(key.data(), true);
      weight_[size_t(p) * d1 + k] = float(bary[k]);
    }
  }
  const int32_t m = table.size();

  // Neighbours along direction j: key ± ((d+1) e_j - 1). Look up only "+"; "-" is its mirror.
  nbr_.assign(size_t(d1) * (m + 1) * 2, 0);
  for (int32_t v = 1; v <= m; ++v) {
    const int32_t* kv = table.key(v);
    for (int j = 0; j <= d; ++j) {
      for (int i = 0; i < d; ++i) key[i] = kv[i] - 1;
      if (j < d) key[j] += d1;
      const int32_t u = table.find(key.data(), false);
      if (u == 0) continue;
      int32_t* nb = &nbr_[size_t(j) * (m + 1) * 2];
      nb[2 * size_t(v)] = u;      // v + step
      nb[2 * size_t(u) + 1] = v;  // u - step
    }
  }
  n_ = n;
  d_ = d;
  m_ = m;
}

namespace {
constexpr int kLane = 4;  // rows are padded to a multiple of kLane floats so these loops vectorise

// dst[0, s) += w * src[0, s)
inline void axpy(float* dst, const float* src, float w, int s) {
  for (int c = 0; c < s; c += kLane) {
    float t[kLane];
    for (int q = 0; q < kLane; ++q) t[q] = dst[c + q] + w * src[c + q];
    for (int q = 0; q < kLane; ++q) dst[c + q] = t[q];
  }
}
}  // namespace

void PermutohedralLattice::filter(const float* in, float* out, int vd) {
  if (n_ < 1) throw std::logic_error("PermutohedralLattice::filter before init");
  if (vd < 1 || !in || !out) throw std::invalid_argument("PermutohedralLattice::filter: bad arguments");
  const int d1 = d_ + 1, s = (vd + kLane - 1) / kLane * kLane;
  const size_t rows = size_t(m_) + 1;
  buf_a_.assign(rows * s, 0.f);
  buf_b_.resize(rows * s);  // rows >= 1 are overwritten by each blur pass
  std::fill(buf_b_.begin(), buf_b_.begin() + s, 0.f);
  row_.assign(size_t(s), 0.f);

  for (int p = 0; p < n_; ++p) {  // splat
    std::copy(in + size_t(p) * vd, in + size_t(p + 1) * vd, row_.begin());
    for (int k = 0; k < d1; ++k) {
      const size_t pk = size_t(p) * d1 + k;
      axpy(&buf_a_[size_t(offset_[pk]) * s], row_.data(), weight_[pk], s);
    }
  }
  // Row 0 (absent neighbour) receives no mass and is never written by the blur.
  for (int j = 0; j < d1; ++j) {  // blur
    const int32_t* nb = &nbr_[size_t(j) * rows * 2];
    const float* A = buf_a_.data();
    float* B = buf_b_.data();
    for (size_t v = 1; v < rows; ++v) {
      const float* a = A + v * s;
      const float* l = A + size_t(nb[2 * v]) * s;
      const float* r = A + size_t(nb[2 * v + 1]) * s;
      float* o = B + v * s;
      for (int c = 0; c < s; c += kLane) {
        float t[kLane];
        for (int q = 0; q < kLane; ++q) t[q] = 0.5f * a[c + q] + 0.25f * (l[c + q] + r[c + q]);
        for (int q = 0; q < kLane; ++q) o[c + q] = t[q];
      }
    }
    std::swap(buf_a_, buf_b_);
  }

  for (int p = 0; p < n_; ++p) {  // slice
    std::fill(row_.begin(), row_.end(), 0.f);
    for (int k = 0; k < d1; ++k) {
      const size_t pk = size_t(p) * d1 + k;
      axpy(row_.data(), &buf_a_[size_t(offset_[pk]) * s], weight_[pk], s);
    }
    std::copy(row_.begin(), row_.begin() + vd, out + size_t(p) * vd);
  }
}

}  // namespace excel::eval
