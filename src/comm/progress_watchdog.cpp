#include "excel/comm/progress_watchdog.h"
#include "excel/common/timing.h"

#include <glog/logging.h>

#include <chrono>
#include <cstdlib>
#include <iostream>
#include <sstream>

namespace excel::comm {
namespace {

const char* phase_name(int64_t p) {
  static const char* names[] = {"step start", "forward",    "backward",   "gradient sync",
                                "optimizer",  "validation", "checkpoint", "finished"};
  return p >= 0 && p < 8 ? names[p] : "?";
}

std::string where(int64_t v) {
  if (v < 0) return "not started";
  return "iteration " + std::to_string(v / 8) + " (" + phase_name(v % 8) + ")";
}

}  // namespace

ProgressWatchdog::ProgressWatchdog(MPI_Comm comm, double timeout_s) : timeout_s_(timeout_s) {
  MPI_Comm_rank(comm, &rank_);
  MPI_Comm_size(comm, &world_);
  if (timeout_s <= 0 || world_ < 2) return;
  enabled_ = true;
  MPI_Comm_dup(comm, &comm_);
  MPI_Comm_set_errhandler(comm_, MPI_ERRORS_RETURN);
  void* base = nullptr;
  int ok = MPI_Win_allocate(static_cast<MPI_Aint>(2 * world_ * sizeof(int64_t)), sizeof(int64_t), MPI_INFO_NULL, comm_,
                            &base, &win_) == MPI_SUCCESS;
  MPI_Allreduce(MPI_IN_PLACE, &ok, 1, MPI_INT, MPI_MIN, comm_);  // every rank or none uses the window
  if (ok) {
    slots_ = static_cast<int64_t*>(base);
    for (int r = 0; r < 2 * world_; ++r) slots_[r] = -1;
    MPI_Win_set_errhandler(win_, MPI_ERRORS_RETURN);
    MPI_Barrier(comm_);  // every window initialised before anyone writes
    windowed_ = MPI_Win_lock_all(0, win_) == MPI_SUCCESS;
  } else {
    if (win_ != MPI_WIN_NULL) MPI_Win_free(&win_);
    LOG(WARNING) << "progress watchdog: no MPI window; a hang is detected but the hung rank is not named";
  }
  thread_ = std::thread([this] { watch(); });
}

ProgressWatchdog::~ProgressWatchdog() {
  if (!enabled_) return;
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  thread_.join();
  if (win_ != MPI_WIN_NULL) {
    if (windowed_) MPI_Win_unlock_all(win_);
    MPI_Win_free(&win_);
  }
  MPI_Comm_free(&comm_);
}

void ProgressWatchdog::mark(int64_t iteration, Phase phase) {
  if (!enabled_) return;
  const int64_t v[2] = {iteration * 8 + phase, ++beats_};
  own_.store(v[0]);
  own_beat_.store(v[1]);
  if (!windowed_) return;
  for (int t = 0; t < world_; ++t) MPI_Put(v, 2, MPI_INT64_T, t, 2 * rank_, 2, MPI_INT64_T, win_);
  MPI_Win_flush_all(win_);
}

std::vector<int64_t> ProgressWatchdog::snapshot(bool with_beats) const {
  std::vector<int64_t> v(static_cast<size_t>(world_ * (with_beats ? 2 : 1)), -1);
  for (int r = 0; r < world_; ++r) {
    for (int k = 0; k < (with_beats ? 2 : 1); ++k) {
      const size_t at = static_cast<size_t>(with_beats ? 2 * r + k : r);
      if (r == rank_)
        v[at] = k == 0 ? own_.load() : own_beat_.load();
      else if (windowed_)
        v[at] = __atomic_load_n(&slots_[2 * r + k], __ATOMIC_RELAXED);
    }
  }
  return v;
}

std::string ProgressWatchdog::diagnosis(double stalled_s) const {
  std::ostringstream o;
  const std::vector<int64_t> v = snapshot(false);
  o << "rank " << rank_ << ": no progress on any rank for " << static_cast<int64_t>(stalled_s) << " s; this rank is at "
    << where(v[static_cast<size_t>(rank_)]);
  if (!windowed_) return o.str() + " (other ranks unknown: a peer rank is hung or dead)";
  int64_t lo = v[0], hi = v[0];
  for (int64_t x : v) lo = std::min(lo, x), hi = std::max(hi, x);
  if (lo == hi) return o.str() + "; every rank is at the same point (a collective that never completes)";
  o << "; hung or dead: ";
  bool first = true;
  for (int r = 0; r < world_; ++r)
    if (v[static_cast<size_t>(r)] == lo) o << (first ? "" : ", ") << "rank " << r, first = false;
  o << " at " << where(lo) << "; the furthest rank is at " << where(hi);
  return o.str();
}

void ProgressWatchdog::watch() {
  std::vector<int64_t> last = snapshot(true);
  auto changed = std::chrono::steady_clock::now();
  std::unique_lock<std::mutex> lock(mu_);
  while (!cv_.wait_for(lock, std::chrono::milliseconds(200), [this] { return stop_; })) {
    std::vector<int64_t> now = snapshot(true);
    if (now != last) {
      last = now;
      changed = std::chrono::steady_clock::now();
      continue;
    }
    const double stalled = seconds_since(changed);
    if (stalled < timeout_s_) continue;
    const std::string msg = diagnosis(stalled);
    LOG(ERROR) << msg;
    std::cerr << "error: " << msg << " (--comm_timeout_s=" << timeout_s_ << ")" << std::endl;
    google::FlushLogFiles(google::GLOG_INFO);
    std::_Exit(3);
  }
}

}  // namespace excel::comm
