#include "excel/metrics/metrics.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <prometheus/text_serializer.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <thread>

#include "excel/common/errors.h"

namespace excel::metrics {

// Minimal HTTP/1.0 server: one thread, one request per connection, GET /metrics only.
class Metrics::Server {
 public:
  Server(const std::string& bind, int port, std::shared_ptr<prometheus::Registry> registry)
      : registry_(std::move(registry)) {
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
  int fd_ = -1, port_ = 0;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

Metrics::Metrics(const std::string& bind, int port, std::map<std::string, std::string> labels)
    : registry_(std::make_shared<prometheus::Registry>()), labels_(std::move(labels)) {
  if (port > 0) {
    server_ = std::make_unique<Server>(bind, port, registry_);
    port_ = server_->port();
  }
}

Metrics::~Metrics() = default;

prometheus::Counter& Metrics::counter(const std::string& name, const std::string& help) {
  return prometheus::BuildCounter().Name(name).Help(help).Register(*registry_).Add(labels_);
}

prometheus::Gauge& Metrics::gauge(const std::string& name, const std::string& help) {
  return prometheus::BuildGauge().Name(name).Help(help).Register(*registry_).Add(labels_);
}

prometheus::Histogram& Metrics::histogram(const std::string& name, const std::string& help,
                                          const std::vector<double>& buckets) {
  return prometheus::BuildHistogram().Name(name).Help(help).Register(*registry_).Add(labels_, buckets);
}

std::vector<double> seconds_buckets() {
  return {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 25, 50, 100};
}

}  // namespace excel::metrics
