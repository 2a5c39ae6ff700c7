#include "excel/metrics/metrics.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <prometheus/text_serializer.h>
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

#include <glog/logging.h>

#include "excel/comm/make_communicator.h"
#include "excel/common/atomic_file.h"
#include "excel/common/errors.h"

namespace excel::metrics {

// Minimal HTTP/1.0 server: one thread, one request per connection, GET /metrics only.
class Metrics::Server {
 public:
  Server(const std::string& bind, int port, std::shared_ptr<prometheus::Registry> registry,
         std::function<void()> before_scrape)
      : registry_(std::move(registry)), before_scrape_(std::move(before_scrape)) {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd_ < 0) throw ConfigError(std::string("metrics socket: ") + std::strerror(errno));
    int one = 1;
    ::setsockopt(fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<uint16_t>(port));
    if (::inet_pton(AF_INET, bind.c_str(), &addr.sin_addr) != 1) {
      ::close(fd_);
      throw ConfigError("metrics bind address '" + bind + "' is not an IPv4 address");
    }
    if (::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 || ::listen(fd_, 64) != 0) {
      std::string err = std::strerror(errno);
      ::close(fd_);
      throw ConfigError("cannot serve metrics on " + bind + ":" + std::to_string(port) + ": " + err);
    }
    socklen_t len = sizeof(addr);
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
    thread_ = std::thread([this] { loop(); });
  }
  ~Server() {
    stop_ = true;
    thread_.join();
    ::close(fd_);
  }
  int port() const { return port_; }

 private:
  void loop() {
    while (!stop_) {
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, 100) <= 0) continue;
      int c = ::accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (c < 0) continue;
      timeval tv{2, 0};
      ::setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
      std::string req;
      char buf[2048];
      while (req.find("\r\n\r\n") == std::string::npos && req.size() < 16384) {
        ssize_t n = ::recv(c, buf, sizeof(buf), 0);
        if (n <= 0) break;
        req.append(buf, static_cast<size_t>(n));
      }
      std::string status = "200 OK", type = "text/plain; version=0.0.4; charset=utf-8", body;
      if (req.rfind("GET /metrics", 0) == 0) {
        before_scrape_();
        body = prometheus::TextSerializer().Serialize(registry_->Collect());
      } else {
        status = "404 Not Found";
        body = "only /metrics is served\n";
      }
      std::string resp = "HTTP/1.0 " + status + "\r\nContent-Type: " + type +
                         "\r\nContent-Length: " + std::to_string(body.size()) + "\r\nConnection: close\r\n\r\n" + body;
      for (size_t off = 0; off < resp.size();) {
        ssize_t n = ::send(c, resp.data() + off, resp.size() - off, MSG_NOSIGNAL);
        if (n <= 0) break;
        off += static_cast<size_t>(n);
      }
      ::close(c);
    }
  }

  std::shared_ptr<prometheus::Registry> registry_;
  std::function<void()> before_scrape_;
  int fd_ = -1, port_ = 0;
  std::atomic<bool> stop_{false};
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

std::string host_name() {
  char buf[256] = {0};
  if (::gethostname(buf, sizeof(buf) - 1) != 0) return "unknown";
  return buf;
}

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
    if (!opt_.sd_dir.empty()) {  // Prometheus file_sd target, written atomically
      const std::string host = opt_.bind == "0.0.0.0" ? host_name() : opt_.bind;
      fs::create_directories(opt_.sd_dir);
      target_file_ =
          opt_.sd_dir + "/excel_" + opt_.job_id + "_" + opt_.phase + "_rank" + std::to_string(opt_.rank) + ".json";
      atomic_write(target_file_, "[{\"targets\": [\"" + host + ":" + std::to_string(port_) + "\"], \"labels\": {}}]\n");
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
    std::error_code ec;
    fs::remove(target_file_, ec);
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
