// Portable random numbers: splitmix64 gives the same values on every platform and library
// version, so data order, augmentation and synthetic images are reproducible anywhere.
#pragma once
#include <cstdint>

namespace excel {

// The splitmix64 finaliser: a well-mixed 64-bit value from any 64-bit input.
inline uint64_t splitmix64_finalize(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

// A seed derived from two values (seeds of per-epoch and per-step generators).
inline uint64_t mix_seed(uint64_t a, uint64_t b) {
  return splitmix64_finalize(a * 0x9E3779B97F4A7C15ULL + b + 0x632BE59BD9B4E019ULL);
}

// A splitmix64 stream.
class SplitMix64 {
 public:
  explicit SplitMix64(uint64_t state) : s_(state) {}
  uint64_t next() { return splitmix64_finalize(s_ += 0x9E3779B97F4A7C15ULL); }
  // Uniform in [0, 1) with 53 random bits.
  double uniform() { return static_cast<double>(next() >> 11) * (1.0 / 9007199254740992.0); }
  // Uniform integer in [0, n) (0 when n <= 1), by modulo.
  int64_t below(int64_t n) { return n <= 1 ? 0 : static_cast<int64_t>(next() % static_cast<uint64_t>(n)); }
  // Uniform integer in [lo, hi], by modulo; always one draw.
  int range(int lo, int hi) { return lo + static_cast<int>(next() % static_cast<uint64_t>(hi - lo + 1)); }

 private:
  uint64_t s_;
};

}  // namespace excel
