#include "excel/comm/progress_watchdog.h"
#include "excel/common/process.h"
#include "excel/common/timing.h"

#include <fcntl.h>
#include <glog/logging.h>
#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <exception>
#include <iostream>
#include <map>
#include <set>
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

// Hosts (of `hosts`) that do not answer a TCP connection to port 1 within timeout_ms: a live host
// accepts or refuses at once; one that is down or cut off stays silent (or is unreachable).
std::set<std::string> silent_hosts(const std::set<std::string>& hosts, int timeout_ms) {
  std::vector<pollfd> fds;
  std::vector<std::string> names;
  std::set<std::string> silent;
  for (const std::string& h : hosts) {
    addrinfo hints{}, *ai = nullptr;
    hints.ai_family = AF_INET;
    hints.ai_socktype = SOCK_STREAM;
    if (::getaddrinfo(h.c_str(), "1", &hints, &ai) != 0) continue;  // unknown: not judged
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    const int rc = fd < 0 ? -1 : ::connect(fd, ai->ai_addr, ai->ai_addrlen);
    const int err = errno;
    ::freeaddrinfo(ai);
    if (fd < 0) continue;
    if (rc == 0 || err == ECONNREFUSED) {
      ::close(fd);
    } else if (err == EINPROGRESS) {
      fds.push_back({fd, POLLOUT, 0});
      names.push_back(h);
    } else {
      ::close(fd), silent.insert(h);  // no route to the host
    }
  }
  const auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  std::vector<bool> done(fds.size(), false);
  for (;;) {
    std::vector<pollfd> open;
    for (size_t i = 0; i < fds.size(); ++i)
      if (!done[i]) open.push_back(fds[i]);
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(until - std::chrono::steady_clock::now());
    if (open.empty() || left.count() <= 0 || ::poll(open.data(), open.size(), static_cast<int>(left.count())) <= 0)
      break;
    for (const pollfd& p : open) {
      if (!p.revents) continue;
      const size_t i = static_cast<size_t>(
          std::find_if(fds.begin(), fds.end(), [&](const pollfd& f) { return f.fd == p.fd; }) - fds.begin());
      int err = 0;
      socklen_t len = sizeof(err);
      ::getsockopt(p.fd, SOL_SOCKET, SO_ERROR, &err, &len);
      done[i] = true;
      if (err != 0 && err != ECONNREFUSED) silent.insert(names[i]);
    }
  }
  for (size_t i = 0; i < fds.size(); ++i) {
    if (!done[i]) silent.insert(names[i]);
    ::close(fds[i].fd);
  }
  return silent;
}

}  // namespace

void prefer_portable_windows() {
  ::setenv("OMPI_MCA_osc", "sm,pt2pt", /*overwrite=*/0);
}

ProgressWatchdog::ProgressWatchdog(MPI_Comm comm, double timeout_s) : timeout_s_(timeout_s) {
  MPI_Comm_rank(comm, &rank_);
  MPI_Comm_size(comm, &world_);
  if (timeout_s <= 0 || world_ < 2) return;
  enabled_ = true;
  MPI_Comm_dup(comm, &comm_);
  MPI_Comm_set_errhandler(comm_, MPI_ERRORS_RETURN);
  // Every rank's host name, so that a diagnosis can name the host of a rank that stops.
  constexpr int kName = 64;
  std::string mine = host_name().substr(0, kName - 1);
  mine.resize(kName, '\0');
  std::vector<char> all(static_cast<size_t>(kName * world_));
  MPI_Allgather(mine.data(), kName, MPI_CHAR, all.data(), kName, MPI_CHAR, comm_);
  for (int r = 0; r < world_; ++r) hosts_.emplace_back(all.data() + static_cast<size_t>(r * kName));
  if (rank_ == 0) {  // the map a user needs when a launcher names a failed host
    const std::set<std::string> names(hosts_.begin(), hosts_.end());
    std::string line;
    for (const std::string& h : names) line += (line.empty() ? "" : "; ") + host_ranks(h);
    LOG(INFO) << "progress watchdog: " << world_ << " ranks on " << names.size() << " host(s): " << line;
  }

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
  // Freeing the window and the communicator is collective: a rank unwinding from an error (a
  // corrupt image, say) would wait there for ranks that are still in the step's all-reduce, and
  // never reach the MPI_Abort that ends the job. Such a rank leaves both to the abort.
  if (std::uncaught_exceptions() > 0) return;
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
  if (lo == hi)
    return o.str() + "; every rank is at the same point (a collective that never completes, or a network partition)";
  // Behind: every rank short of the furthest one, grouped by host.
  std::map<std::string, std::vector<int>> behind;
  o << "; hung or dead: ";
  bool first = true, mixed = false;
  for (int r = 0; r < world_; ++r) {
    const int64_t x = v[static_cast<size_t>(r)];
    if (x >= hi) continue;
    o << (first ? "" : ", ") << "rank " << r, first = false, mixed = mixed || x != lo;
    behind[hosts_[static_cast<size_t>(r)]].push_back(r);
  }
  o << " at " << where(lo) << (mixed ? " or later" : "");
  const bool one_host = ranks_on(hosts_[0]).size() == static_cast<size_t>(world_);
  if (behind.size() == 1 && !one_host)
    o << "; all on host " << host_ranks(behind.begin()->first);  // one host's fault: name it
  else if (!one_host)
    for (const auto& [host, ranks] : behind) o << "; on " << host << ": " << ranks.size() << " of them";
  o << "; the furthest rank is at " << where(hi);
  return o.str();
}

std::vector<int> ProgressWatchdog::ranks_on(const std::string& host) const {
  std::vector<int> ranks;
  for (int r = 0; r < world_; ++r)
    if (hosts_[static_cast<size_t>(r)] == host) ranks.push_back(r);
  return ranks;
}

std::string ProgressWatchdog::host_ranks(const std::string& host) const {
  std::string s = host + " (rank" + (ranks_on(host).size() > 1 ? "s " : " ");
  bool first = true;
  for (int r : ranks_on(host)) s += (first ? "" : ", ") + std::to_string(r), first = false;
  return s + ")";
}

std::string ProgressWatchdog::network_check() const {
  if (hosts_.empty()) return "";
  std::set<std::string> others(hosts_.begin(), hosts_.end());
  others.erase(hosts_[static_cast<size_t>(rank_)]);
  std::string s;
  for (const std::string& h : silent_hosts(others, 2000))
    s += (s.empty() ? "" : "; ") + ("host " + host_ranks(h)) +
         " does not answer on the network (no reply to a TCP connection in 2 s)";
  return s;
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
    // What the ranks published first (the launcher may end this process at any moment now), then
    // which other hosts are silent on the network.
    auto report = [this](const std::string& msg) {
      LOG(ERROR) << msg;
      std::cerr << "error: " << msg << " (--comm_timeout_s=" << timeout_s_ << ")" << std::endl;
      google::FlushLogFiles(google::GLOG_INFO);
    };
    report(diagnosis(stalled));
    const std::string silent = network_check();
    if (!silent.empty()) report("rank " + std::to_string(rank_) + ": no progress, and " + silent);
    std::_Exit(3);
  }
}

}  // namespace excel::comm
