// Prometheus metrics for one process: a prometheus-cpp registry, a small HTTP endpoint on
// bind:port serving /metrics, and typed handles created once at start-up. Thread-safe
// (prometheus-cpp metrics are atomic; the endpoint serialises on its own thread).
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

namespace excel::metrics {

class Metrics {
 public:
  // port 0 disables the endpoint (metrics are still counted). Constant labels go on every series.
  Metrics(const std::string& bind, int port, std::map<std::string, std::string> const_labels);
  ~Metrics();

  prometheus::Counter& counter(const std::string& name, const std::string& help);
  prometheus::Gauge& gauge(const std::string& name, const std::string& help);
  prometheus::Histogram& histogram(const std::string& name, const std::string& help,
                                   const std::vector<double>& buckets);
  int bound_port() const { return port_; }

 private:
  std::shared_ptr<prometheus::Registry> registry_;
  class Server;
  std::unique_ptr<Server> server_;
  std::map<std::string, std::string> labels_;
  int port_ = 0;
};

// Default latency buckets in seconds (1 ms .. ~100 s).
std::vector<double> seconds_buckets();

}  // namespace excel::metrics
