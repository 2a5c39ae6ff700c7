// Prometheus metrics for one process: a prometheus-cpp registry, a small HTTP endpoint on
// bind:port serving /metrics, and typed handles created once at start-up. Every series carries
// the constant labels job_id, rank, host and phase. Also: process metrics refreshed on each
// scrape, this rank's entry in its host's file_sd target file for Prometheus discovery
// (metrics/target_file.h; removed at exit) and an optional push
// of the final values to a Pushgateway. Thread-safe (prometheus-cpp metrics are atomic).
// The endpoint is our own: civetweb (prometheus-cpp's Exposer) fails to start in processes
// that load Debian's libtorch_cpu.
#pragma once
#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "excel/common/process.h"

namespace excel::metrics {

struct MetricsOptions {
  std::string bind = "127.0.0.1";
  int port = 0;  // 0: no endpoint (metrics are still counted, and pushed if asked)
  std::string job_id = "local";
  int rank = 0, world_size = 1;
  std::string phase;        // precompute | train | eval | cam
  std::string sd_dir;       // file_sd target directory ("" = none); one file per host
  std::string pushgateway;  // host:port ("" = none)
  int linger_s = 0;         // keep serving this long in finish()
};

class Metrics {
 public:
  explicit Metrics(const MetricsOptions& options);
  ~Metrics();  // calls finish() if it was not called

  prometheus::Counter& counter(const std::string& name, const std::string& help,
                               const std::map<std::string, std::string>& labels = {});
  prometheus::Gauge& gauge(const std::string& name, const std::string& help,
                           const std::map<std::string, std::string>& labels = {});
  prometheus::Histogram& histogram(const std::string& name, const std::string& help, const std::vector<double>& buckets,
                                   const std::map<std::string, std::string>& labels = {});
  int bound_port() const { return port_; }
  // The host's target file (shared with the other ranks of this job phase on this host; "" without).
  const std::string& target_file() const { return target_file_; }
  // End of the work: push to the Pushgateway, serve linger_s more seconds, remove this rank's
  // target (and the file, when it was the last).
  void finish();

 private:
  void refresh_process_metrics();
  std::map<std::string, std::string> with_constants(const std::map<std::string, std::string>& extra) const;

  MetricsOptions opt_;
  std::shared_ptr<prometheus::Registry> registry_;
  class Server;
  std::unique_ptr<Server> server_;
  std::map<std::string, std::string> labels_;
  int port_ = 0;
  std::string target_file_, target_;  // the host's target file, this rank's HOST:PORT in it
  bool finished_ = false;
  prometheus::Gauge *rss_ = nullptr, *gpu_ = nullptr;
  prometheus::Counter* cpu_ = nullptr;
};

// Progress of a rank through a known amount of work (precompute rows, eval images):
// <prefix>_<unit>_total, <prefix>_<unit>_planned, <prefix>_progress_ratio, <prefix>_eta_seconds
// and <prefix>_<step>_seconds. Every method is a no-op without a registry.
class ProgressMetrics {
 public:
  ProgressMetrics(Metrics* mx, const std::string& prefix, const std::string& unit, const std::string& step);
  void planned(int64_t total);
  // `count` more units done in `seconds`; done of total after `spent` seconds in all.
  void advance(int64_t count, double seconds, int64_t done, int64_t total, double spent);
  void finished();  // progress 1, ETA 0

 private:
  prometheus::Counter* done_ = nullptr;
  prometheus::Gauge *planned_ = nullptr, *ratio_ = nullptr, *eta_ = nullptr;
  prometheus::Histogram* step_s_ = nullptr;
};

// Default latency buckets in seconds (1 ms .. ~100 s).
std::vector<double> seconds_buckets();
// This machine's host name (common/process.h).
using excel::host_name;

}  // namespace excel::metrics
