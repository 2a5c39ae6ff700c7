// Wall-clock timing on the monotonic clock.
#pragma once
#include <chrono>

namespace excel {

using Clock = std::chrono::steady_clock;

inline double seconds_since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

// Adds the seconds a scope took to *sink when it ends.
class ScopedTimer {
 public:
  explicit ScopedTimer(double* sink) : sink_(sink), start_(Clock::now()) {}
  ~ScopedTimer() { *sink_ += seconds_since(start_); }
  ScopedTimer(const ScopedTimer&) = delete;
  ScopedTimer& operator=(const ScopedTimer&) = delete;

 private:
  double* sink_;
  Clock::time_point start_;
};

}  // namespace excel
