#include "excel/metrics/metrics.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <prometheus/text_serializer.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <prometheus/gateway.h>
#include <sys/resource.h>
#include <sys/time.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

#include <glog/logging.h>

#include "excel/comm/make_communicator.h"
#include "excel/common/errors.h"
#include "excel/metrics/target_file.h"

namespace excel::metrics {

// The /metrics endpoint. One thread polls the listener and every open connection; sockets are
// non-blocking and each connection is a small state machine (read the request head, write the
// response, drain what the client still sends), so a slow or silent client holds a slot, not
// the thread: other scrapes are answered while it is connected. Limits per connection: the
// request head must arrive within kReadTimeout and fit in kMaxHead bytes, the response must be
// taken within kWriteTimeout; at kMaxConnections the oldest connection still sending its request
// is dropped. HTTP/1.0, one request per connection: GET (and HEAD) /metrics; other paths 404,
// other methods on /metrics 405, a malformed head 400, an oversized one 431.
// (Our own rather than prometheus-cpp's Exposer: civetweb fails to start in processes that load
// Debian's libtorch_cpu; see metrics.h.)
class Metrics::Server {
 public:
  Server(const std::string& bind, int port, std::shared_ptr<prometheus::Registry> registry,
         std::function<void()> before_scrape)
      : registry_(std::move(registry)), before_scrape_(std::move(before_scrape)) {
    sockaddr_storage addr{};
    socklen_t addr_len = 0;
    const int family = parse_address(bind, port, &addr, &addr_len);
    if (family < 0) throw ConfigError("metrics bind address '" + bind + "' is not an IPv4 or IPv6 address");
    fd_ = ::socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd_ < 0) throw ConfigError(std::string("metrics socket: ") + std::strerror(errno));
    int one = 1;
    ::setsockopt(fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (::bind(fd_, reinterpret_cast<sockaddr*>(&addr), addr_len) != 0 || ::listen(fd_, 128) != 0) {
      const std::string err = std::strerror(errno);
      ::close(fd_);
      throw ConfigError("cannot serve metrics on " + bind + ":" + std::to_string(port) + ": " + err);
    }
    socklen_t len = sizeof(addr);
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(family == AF_INET ? reinterpret_cast<sockaddr_in*>(&addr)->sin_port
                                    : reinterpret_cast<sockaddr_in6*>(&addr)->sin6_port);
    wake_ = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (wake_ < 0) {
      const std::string err = std::strerror(errno);
      ::close(fd_);
      throw ConfigError("metrics eventfd: " + err);
    }
    thread_ = std::thread([this] { loop(); });
  }
  // Stops accepting (the listener is shut down at once), wakes the loop and joins it: the loop
  // blocks only in poll(), so the join takes at most one pass over the ready connections.
  ~Server() {
    stop_ = true;
    ::shutdown(fd_, SHUT_RDWR);
    const uint64_t one = 1;
    if (::write(wake_, &one, sizeof(one)) < 0) {
      // the loop still sees stop_ within its poll timeout
    }
    thread_.join();
    for (Conn& c : conns_) ::close(c.fd);
    ::close(fd_);
    ::close(wake_);
  }
  int port() const { return port_; }

  static constexpr size_t kMaxHead = 8192;
  static constexpr size_t kMaxConnections = 256;
  static constexpr std::chrono::milliseconds kReadTimeout{5000}, kWriteTimeout{10000}, kDrainTimeout{1000};

 private:
  using Clock = std::chrono::steady_clock;
  enum class State { kReading, kWriting, kDraining };
  struct Conn {
    int fd;
    State state;
    Clock::time_point deadline;
    std::string in, out;
    size_t sent = 0;
  };

  // AF_INET or AF_INET6 with `addr` filled in, or -1. IPv6 literals may be bracketed.
  static int parse_address(std::string host, int port, sockaddr_storage* addr, socklen_t* len) {
    const bool bracketed = host.size() > 2 && host.front() == '[' && host.back() == ']';
    if (bracketed) host = host.substr(1, host.size() - 2);
    auto* v4 = reinterpret_cast<sockaddr_in*>(addr);
    if (!bracketed && ::inet_pton(AF_INET, host.c_str(), &v4->sin_addr) == 1) {
      v4->sin_family = AF_INET;
      v4->sin_port = htons(static_cast<uint16_t>(port));
      *len = sizeof(sockaddr_in);
      return AF_INET;
    }
    *addr = sockaddr_storage{};
    auto* v6 = reinterpret_cast<sockaddr_in6*>(addr);
    if (::inet_pton(AF_INET6, host.c_str(), &v6->sin6_addr) == 1) {
      v6->sin6_family = AF_INET6;
      v6->sin6_port = htons(static_cast<uint16_t>(port));
      *len = sizeof(sockaddr_in6);
      return AF_INET6;
    }
    return -1;
  }

  void loop() {
    std::vector<pollfd> fds;
    while (!stop_) {
      fds.clear();
      fds.push_back({wake_, POLLIN, 0});
      fds.push_back({fd_, POLLIN, 0});
      for (const Conn& c : conns_)
        fds.push_back({c.fd, static_cast<short>(c.state == State::kWriting ? POLLOUT : POLLIN), 0});
      const int ready = ::poll(fds.data(), fds.size(), poll_timeout_ms());
      if (stop_) break;
      if (ready < 0 && errno != EINTR) {
        PLOG(WARNING) << "metrics endpoint: poll";
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
      }
      // Connections first (their pollfds line up with conns_), then new ones.
      size_t kept = 0;
      for (size_t i = 0; i < conns_.size(); ++i) {
        Conn& c = conns_[i];
        bool open = true;
        if (ready > 0 && fds[i + 2].revents != 0) open = advance(c);
        if (open && Clock::now() >= c.deadline) open = false;
        if (open) {
          if (kept != i) conns_[kept] = std::move(c);
          ++kept;
        } else {
          ::close(c.fd);
        }
      }
      conns_.resize(kept);
      if (ready > 0 && fds[1].revents != 0) accept_all();
    }
  }

  // Until the nearest deadline (at most 1 s; the destructor wakes us through wake_).
  int poll_timeout_ms() const {
    auto wait = std::chrono::milliseconds(1000);
    const Clock::time_point now = Clock::now();
    for (const Conn& c : conns_)
      wait = std::min(
          wait, std::chrono::duration_cast<std::chrono::milliseconds>(c.deadline - now) + std::chrono::milliseconds(1));
    return static_cast<int>(std::max<int64_t>(0, wait.count()));
  }

  void accept_all() {
    for (;;) {
      const int c = ::accept4(fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (c < 0) return;  // EAGAIN, or the listener was shut down
      if (conns_.size() >= kMaxConnections) {
        // Full: drop the oldest connection that has not sent its request yet (or refuse this one).
        auto victim =
            std::find_if(conns_.begin(), conns_.end(), [](const Conn& k) { return k.state == State::kReading; });
        if (victim == conns_.end()) {
          ::close(c);
          continue;
        }
        ::close(victim->fd);
        conns_.erase(victim);
      }
      conns_.push_back({c, State::kReading, Clock::now() + kReadTimeout, {}, {}, 0});
    }
  }

  // Moves one connection on after poll() reported it; false when it is done (to be closed).
  bool advance(Conn& c) {
    char buf[4096];
    if (c.state == State::kReading) {
      for (;;) {
        const ssize_t n = ::recv(c.fd, buf, sizeof(buf), 0);
        if (n == 0) return false;  // closed before a whole request
        if (n < 0) {
          if (errno == EAGAIN || errno == EWOULDBLOCK) break;
          if (errno == EINTR) continue;
          return false;
        }
        c.in.append(buf, static_cast<size_t>(n));
        size_t end = c.in.find("\r\n\r\n");
        if (end == std::string::npos) end = c.in.find("\n\n");
        if (end != std::string::npos && end <= kMaxHead) {
          c.out = respond(c.in.substr(0, end));
          break;
        }
        if (c.in.size() > kMaxHead) {
          c.out = reply("431 Request Header Fields Too Large",
                        "request head over " + std::to_string(kMaxHead) + " bytes\n");
          break;
        }
      }
      if (c.out.empty()) return true;  // more to read
      c.in.clear();
      c.state = State::kWriting;
      c.deadline = Clock::now() + kWriteTimeout;
    }
    if (c.state == State::kWriting) {
      while (c.sent < c.out.size()) {
        const ssize_t n = ::send(c.fd, c.out.data() + c.sent, c.out.size() - c.sent, MSG_NOSIGNAL);
        if (n < 0) {
          if (errno == EAGAIN || errno == EWOULDBLOCK) return true;
          if (errno == EINTR) continue;
          return false;
        }
        c.sent += static_cast<size_t>(n);
      }
      // All sent: half-close and read what the client still sends (a request body) until it
      // closes, so that closing does not reset the connection before it has read the response.
      ::shutdown(c.fd, SHUT_WR);
      c.out.clear();
      c.state = State::kDraining;
      c.deadline = Clock::now() + kDrainTimeout;
      return true;
    }
    for (;;) {  // kDraining
      const ssize_t n = ::recv(c.fd, buf, sizeof(buf), 0);
      if (n == 0) return false;
      if (n < 0) return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR;
    }
  }

  // The response to one request head ("METHOD TARGET HTTP/x.y" and headers).
  std::string respond(const std::string& head) {
    const std::string line = head.substr(0, head.find_first_of("\r\n"));
    const size_t s1 = line.find(' '), s2 = line.find(' ', s1 == std::string::npos ? s1 : s1 + 1);
    if (s1 == std::string::npos || s2 == std::string::npos || line.compare(s2 + 1, 5, "HTTP/") != 0 ||
        line.find(' ', s2 + 1) != std::string::npos)
      return reply("400 Bad Request", "malformed request line\n");
    const std::string method = line.substr(0, s1), target = line.substr(s1 + 1, s2 - s1 - 1);
    if (target.substr(0, target.find('?')) != "/metrics") return reply("404 Not Found", "only /metrics is served\n");
    if (method != "GET" && method != "HEAD")
      return reply("405 Method Not Allowed", "only GET and HEAD\n", "Allow: GET, HEAD\r\n");
    before_scrape_();
    std::string body = prometheus::TextSerializer().Serialize(registry_->Collect());
    return reply("200 OK", body, "", method == "HEAD");
  }

  static std::string reply(const std::string& status, const std::string& body, const std::string& extra = "",
                           bool head_only = false) {
    const std::string type =
        status == "200 OK" ? "text/plain; version=0.0.4; charset=utf-8" : "text/plain; charset=utf-8";
    return "HTTP/1.0 " + status + "\r\nContent-Type: " + type + "\r\nContent-Length: " + std::to_string(body.size()) +
           "\r\n" + extra + "Connection: close\r\n\r\n" + (head_only ? std::string() : body);
  }

  std::shared_ptr<prometheus::Registry> registry_;
  std::function<void()> before_scrape_;
  int fd_ = -1, wake_ = -1, port_ = 0;
  std::atomic<bool> stop_{false};
  std::vector<Conn> conns_;  // touched by the loop thread only (and the destructor after the join)
  std::thread thread_;
};

namespace {
namespace fs = std::filesystem;

double process_cpu_seconds() {
  rusage u{};
  ::getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
         1e-6 * static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec);
}

double resident_bytes() {
  long pages = 0, resident = 0;
  if (FILE* f = std::fopen("/proc/self/statm", "r")) {
    if (std::fscanf(f, "%ld %ld", &pages, &resident) != 2) resident = 0;
    std::fclose(f);
  }
  return static_cast<double>(resident) * static_cast<double>(::sysconf(_SC_PAGESIZE));
}

std::mutex process_mutex;
}  // namespace

Metrics::Metrics(const MetricsOptions& options) : opt_(options), registry_(std::make_shared<prometheus::Registry>()) {
  labels_ = {
      {"job_id", opt_.job_id}, {"rank", std::to_string(opt_.rank)}, {"host", host_name()}, {"phase", opt_.phase}};
  gauge("excel_world_size", "Ranks in this job").Set(opt_.world_size);
  gauge("process_start_time_seconds", "Start time of the process since the Unix epoch")
      .Set(std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count());
  rss_ = &gauge("process_resident_memory_bytes", "Resident memory size");
  cpu_ = &counter("process_cpu_seconds_total", "User and system CPU time spent");
  if (comm::gpu_memory_used_bytes() >= 0)  // CUDA builds on a machine with a device
    gpu_ = &gauge("excel_gpu_memory_used_bytes", "Memory in use on this rank's CUDA device (all processes)");
  refresh_process_metrics();
  if (opt_.port > 0) {
    server_ = std::make_unique<Server>(opt_.bind, opt_.port, registry_, [this] { refresh_process_metrics(); });
    port_ = server_->port();
    if (!opt_.sd_dir.empty()) {  // this rank's group in the host's file_sd target file
      // A wildcard address is reached through the host name; an IPv6 literal is bracketed.
      const bool wildcard = opt_.bind == "0.0.0.0" || opt_.bind == "::" || opt_.bind == "[::]";
      const bool v6 = opt_.bind.find(':') != std::string::npos && opt_.bind.front() != '[';
      const std::string host = wildcard ? host_name() : v6 ? "[" + opt_.bind + "]" : opt_.bind;
      fs::create_directories(opt_.sd_dir);
      target_ = host + ":" + std::to_string(port_);
      target_file_ = host_target_file(opt_.sd_dir, opt_.job_id, opt_.phase, host_name());
      add_target(target_file_, opt_.rank, target_);
    }
  }
}

Metrics::~Metrics() {
  try {
    finish();
  } catch (const std::exception& e) {
    LOG(WARNING) << "metrics: " << e.what();
  }
}

void Metrics::refresh_process_metrics() {
  std::lock_guard<std::mutex> lock(process_mutex);
  rss_->Set(resident_bytes());
  if (gpu_) gpu_->Set(static_cast<double>(comm::gpu_memory_used_bytes()));
  const double cpu = process_cpu_seconds(), seen = cpu_->Value();
  if (cpu > seen) cpu_->Increment(cpu - seen);
}

void Metrics::finish() {
  if (finished_) return;
  finished_ = true;
  refresh_process_metrics();
  if (!opt_.pushgateway.empty()) {
    const size_t colon = opt_.pushgateway.rfind(':');
    if (colon == std::string::npos)
      throw ConfigError("--metrics_pushgateway must be host:port, not '" + opt_.pushgateway + "'");
    prometheus::Gateway gw(opt_.pushgateway.substr(0, colon), opt_.pushgateway.substr(colon + 1), "excel",
                           {{"job_id", opt_.job_id}, {"rank", std::to_string(opt_.rank)}, {"phase", opt_.phase}});
    gw.RegisterCollectable(registry_);
    const int code = gw.Push();
    if (code < 200 || code >= 300)
      LOG(WARNING) << "push to the Pushgateway at " << opt_.pushgateway << " failed (HTTP " << code << ")";
    else
      LOG(INFO) << "pushed final metrics to " << opt_.pushgateway;
  }
  if (server_ && opt_.linger_s > 0) std::this_thread::sleep_for(std::chrono::seconds(opt_.linger_s));
  if (!target_file_.empty()) {
    try {
      remove_target(target_file_, opt_.rank, target_);
    } catch (const std::exception& e) {
      LOG(WARNING) << "metrics: " << e.what();
    }
  }
  server_.reset();
}

std::map<std::string, std::string> Metrics::with_constants(const std::map<std::string, std::string>& extra) const {
  std::map<std::string, std::string> all = labels_;
  for (const auto& kv : extra) all[kv.first] = kv.second;
  return all;
}

prometheus::Counter& Metrics::counter(const std::string& name, const std::string& help,
                                      const std::map<std::string, std::string>& labels) {
  return prometheus::BuildCounter().Name(name).Help(help).Register(*registry_).Add(with_constants(labels));
}

prometheus::Gauge& Metrics::gauge(const std::string& name, const std::string& help,
                                  const std::map<std::string, std::string>& labels) {
  return prometheus::BuildGauge().Name(name).Help(help).Register(*registry_).Add(with_constants(labels));
}

prometheus::Histogram& Metrics::histogram(const std::string& name, const std::string& help,
                                          const std::vector<double>& buckets,
                                          const std::map<std::string, std::string>& labels) {
  return prometheus::BuildHistogram().Name(name).Help(help).Register(*registry_).Add(with_constants(labels), buckets);
}

ProgressMetrics::ProgressMetrics(Metrics* mx, const std::string& prefix, const std::string& unit,
                                 const std::string& step) {
  if (!mx) return;
  done_ = &mx->counter(prefix + "_" + unit + "_total", "Units of work (" + unit + ") done by this rank");
  planned_ = &mx->gauge(prefix + "_" + unit + "_planned", "Units of work (" + unit + ") this rank has to do");
  ratio_ = &mx->gauge(prefix + "_progress_ratio", "Fraction of this rank's work done");
  eta_ = &mx->gauge(prefix + "_eta_seconds", "Estimated seconds until this rank is done");
  step_s_ = &mx->histogram(prefix + "_" + step + "_seconds", "Wall time per " + step, seconds_buckets());
}

void ProgressMetrics::planned(int64_t total) {
  if (planned_) planned_->Set(static_cast<double>(total));
}

void ProgressMetrics::advance(int64_t count, double seconds, int64_t done, int64_t total, double spent) {
  if (!done_) return;
  done_->Increment(static_cast<double>(count));
  step_s_->Observe(seconds);
  planned_->Set(static_cast<double>(total));
  ratio_->Set(static_cast<double>(done) / static_cast<double>(std::max<int64_t>(1, total)));
  eta_->Set(done > 0 ? spent / static_cast<double>(done) * static_cast<double>(total - done) : 0.0);
}

void ProgressMetrics::finished() {
  if (!ratio_) return;
  ratio_->Set(1.0);
  eta_->Set(0.0);
}

std::vector<double> seconds_buckets() {
  return {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 25, 50, 100};
}

}  // namespace excel::metrics
