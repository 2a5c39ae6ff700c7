// Hang detection for data-parallel ranks. Every rank publishes its progress (iteration, phase)
// into an MPI window on every rank (one-sided puts from the main thread, so no MPI call ever
// comes from another thread). A background thread on each rank watches the published values:
// when no rank has made progress for `timeout_s`, it names the rank(s) furthest behind — the
// hung or dead ones, with their host names (gathered at start), and a host whose ranks are all
// behind as that host — and ends the process with exit code 3, which makes mpirun/srun stop the
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

// Before MPI_Init: unless the user chose, OpenMPI's one-sided component is shared memory on one
// node and pt2pt across nodes (OpenMPI 4.1 otherwise picks osc/rdma across nodes without RDMA
// hardware, and MPI_Win_allocate fails there, leaving the watchdog unable to name ranks).
void prefer_portable_windows();

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
  // The diagnosis the watchdog would print now (for tests and logs): the ranks behind and their
  // hosts. When it fires, it also names any other host that does not answer a TCP connection (down
  // or cut off), in a second message.
  std::string diagnosis(double stalled_s) const;
  // Host name of each rank (gathered at construction; empty when disabled).
  const std::vector<std::string>& hosts() const { return hosts_; }

 private:
  void watch();
  // Per rank: progress (and the beat counter when with_beats).
  std::vector<int64_t> snapshot(bool with_beats) const;
  std::vector<int> ranks_on(const std::string& host) const;
  std::string host_ranks(const std::string& host) const;  // "mn2 (ranks 2, 3)"
  std::string network_check() const;                      // "host ... does not answer ..." per silent host

  bool enabled_ = false, windowed_ = false;
  int rank_ = 0, world_ = 1;
  double timeout_s_ = 0;
  MPI_Comm comm_ = MPI_COMM_NULL;
  MPI_Win win_ = MPI_WIN_NULL;
  // 2 x world entries: (iteration * 8 + phase, beat), -1 before the first mark. The beat counts
  // marks, so repeated marks of one phase (validation images) count as progress.
  int64_t* slots_ = nullptr;
  std::vector<std::string> hosts_;
  int64_t beats_ = 0;
  std::atomic<int64_t> own_{-1}, own_beat_{-1};
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  std::thread thread_;
};

}  // namespace excel::comm
