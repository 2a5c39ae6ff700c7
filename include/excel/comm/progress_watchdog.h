// Hang detection for data-parallel ranks. Every rank publishes its progress (iteration, phase)
// into an MPI window on every rank (one-sided puts from the main thread, so no MPI call ever
// comes from another thread). A background thread on each rank watches the published values:
// when no rank has made progress for `timeout_s`, it names the rank(s) furthest behind — the
// hung or dead ones — and ends the process with exit code 3, which makes mpirun/srun stop the
// job. Without a usable window (an MPI without one-sided support) it watches its own rank only.
#pragma once
#include <mpi.h>

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace excel::comm {

class ProgressWatchdog {
 public:
  enum Phase : int {
    kStep = 0,
    kForward = 1,
    kBackward = 2,
    kGradientSync = 3,
    kOptimizer = 4,
    kValidation = 5,
    kCheckpoint = 6,
    kFinished = 7
  };
  // Collective over comm. timeout_s <= 0 or a single rank: disabled (mark() does nothing).
  ProgressWatchdog(MPI_Comm comm, double timeout_s);
  ~ProgressWatchdog();  // collective
  ProgressWatchdog(const ProgressWatchdog&) = delete;
  ProgressWatchdog& operator=(const ProgressWatchdog&) = delete;

  // Main thread only: this rank reached `phase` of `iteration`.
  void mark(int64_t iteration, Phase phase);
  bool enabled() const { return enabled_; }
  // The diagnosis the watchdog would print now (for tests and logs).
  std::string diagnosis(double stalled_s) const;

 private:
  void watch();
  // Per rank: progress (and the beat counter when with_beats).
  std::vector<int64_t> snapshot(bool with_beats) const;

  bool enabled_ = false, windowed_ = false;
  int rank_ = 0, world_ = 1;
  double timeout_s_ = 0;
  MPI_Comm comm_ = MPI_COMM_NULL;
  MPI_Win win_ = MPI_WIN_NULL;
  // 2 x world entries: (iteration * 8 + phase, beat), -1 before the first mark. The beat counts
  // marks, so repeated marks of one phase (validation images) count as progress.
  int64_t* slots_ = nullptr;
  int64_t beats_ = 0;
  std::atomic<int64_t> own_{-1}, own_beat_{-1};
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  std::thread thread_;
};

}  // namespace excel::comm
