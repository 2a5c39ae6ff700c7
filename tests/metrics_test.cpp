// metrics/metrics (src/metrics/metrics.cpp): the registry hands out one series per name and
// label set, every series carries the constant labels, the /metrics endpoint on 127.0.0.1 serves
// the text exposition (HELP, TYPE, values), the host's shared file_sd target file (ranks adding
// and removing their groups concurrently, stale groups replaced) and finish() (Pushgateway push,
// linger, target removed, endpoint stopped), ProgressMetrics' derived values.
// The endpoint under load: scrapes answered while 50 idle or trickling clients are connected,
// two scrapes at once, 404/405/400/431, the read deadline, a prompt stop with clients connected.
// Every endpoint here binds 127.0.0.1 on a port the kernel just handed out (one test binds ::1
// and skips without an IPv6 loopback), and is stopped within its test.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <future>
#include <iostream>
#include <map>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "excel/common/atomic_file.h"
#include "excel/common/errors.h"
#include "excel/metrics/metrics.h"
#include "excel/metrics/target_file.h"
#include "test_util.h"

using namespace excel;
using metrics::Metrics;
using metrics::MetricsOptions;
namespace fs = std::filesystem;

namespace {

// A TCP port on 127.0.0.1 that was free a moment ago (bound to port 0, read back, closed).
int free_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = 0;
  ::inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0) {
    ::close(fd);
    return -1;
  }
  socklen_t len = sizeof(a);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  ::close(fd);
  return ntohs(a.sin_port);
}

int connect_local(int port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  ::inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0) {
    ::close(fd);
    return -1;
  }
  timeval tv{10, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  return fd;
}

// Sends `raw` to 127.0.0.1:port and reads the whole response (until the server closes), or
// nullopt when nothing listens there.
std::optional<std::string> exchange(int port, const std::string& raw) {
  const int fd = connect_local(port);
  if (fd < 0) return std::nullopt;
  ::send(fd, raw.data(), raw.size(), MSG_NOSIGNAL);
  std::string resp;
  char buf[4096];
  for (ssize_t n; (n = ::recv(fd, buf, sizeof(buf), 0)) > 0;) resp.append(buf, static_cast<size_t>(n));
  ::close(fd);
  return resp;
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// GET `path` from 127.0.0.1:port; the whole response (status line, headers, body), or nullopt
// when nothing listens there.
std::optional<std::string> http_get(int port, const std::string& path) {
  const int fd = connect_local(port);
  if (fd < 0) return std::nullopt;
  const std::string req = "GET " + path + " HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n";
  ::send(fd, req.data(), req.size(), MSG_NOSIGNAL);
  std::string resp;
  char buf[4096];
  for (ssize_t n; (n = ::recv(fd, buf, sizeof(buf), 0)) > 0;) resp.append(buf, static_cast<size_t>(n));
  ::close(fd);
  return resp;
}

std::string body_of(const std::string& response) {
  const size_t p = response.find("\r\n\r\n");
  return p == std::string::npos ? "" : response.substr(p + 4);
}

// The value of the series `name{...}` whose labels include every `labels` pair, or nullopt.
std::optional<double> series_value(const std::string& text, const std::string& name,
                                   const std::map<std::string, std::string>& labels = {}) {
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    if (line.rfind(name + "{", 0) != 0 && line.rfind(name + " ", 0) != 0) continue;
    bool all = true;
    for (const auto& kv : labels) all = all && line.find(kv.first + "=\"" + kv.second + "\"") != std::string::npos;
    if (all) return std::stod(line.substr(line.rfind(' ') + 1));
  }
  return std::nullopt;
}

// An options block serving on a free 127.0.0.1 port.
MetricsOptions served(const std::string& phase) {
  MetricsOptions o;
  o.bind = "127.0.0.1";
  o.port = free_port();
  o.job_id = "unit";
  o.rank = 3;
  o.world_size = 4;
  o.phase = phase;
  return o;
}

// One HTTP request answered by a fake Pushgateway on 127.0.0.1: records the request line and
// body, replies 200. Gives up after 20 s so a test cannot hang.
class FakePushgateway {
 public:
  FakePushgateway() {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = 0;
    ::inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    ::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof(a));
    ::listen(fd_, 4);
    socklen_t len = sizeof(a);
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
    thread_ = std::thread([this] { serve(); });
  }
  ~FakePushgateway() {
    if (thread_.joinable()) thread_.join();
    ::close(fd_);
  }
  int port() const { return port_; }
  // Waits for the one request; (request line, body).
  std::pair<std::string, std::string> request() {
    if (thread_.joinable()) thread_.join();
    return {request_line_, body_};
  }

 private:
  void serve() {
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, 20000) <= 0) return;
    const int c = ::accept(fd_, nullptr, nullptr);
    if (c < 0) return;
    timeval tv{10, 0};
    ::setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    std::string req;
    char buf[4096];
    auto more = [&] {
      const ssize_t n = ::recv(c, buf, sizeof(buf), 0);
      if (n > 0) req.append(buf, static_cast<size_t>(n));
      return n > 0;
    };
    while (req.find("\r\n\r\n") == std::string::npos && more()) {
    }
    const size_t head_end = req.find("\r\n\r\n");
    if (head_end != std::string::npos) {
      std::string head = req.substr(0, head_end);
      for (char& ch : head) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
      if (head.find("expect: 100-continue") != std::string::npos) {
        const std::string cont = "HTTP/1.1 100 Continue\r\n\r\n";
        ::send(c, cont.data(), cont.size(), MSG_NOSIGNAL);
      }
      const size_t cl = head.find("content-length:");
      if (cl != std::string::npos) {
        const size_t want = std::stoul(head.substr(cl + 15));
        while (req.size() - head_end - 4 < want && more()) {
        }
      } else if (head.find("chunked") != std::string::npos) {
        while (req.find("\r\n0\r\n\r\n", head_end) == std::string::npos && more()) {
        }
      }
      request_line_ = req.substr(0, req.find("\r\n"));
      body_ = req.substr(head_end + 4);
    }
    const std::string ok = "HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
    ::send(c, ok.data(), ok.size(), MSG_NOSIGNAL);
    ::close(c);
  }

  int fd_ = -1, port_ = 0;
  std::thread thread_;
  std::string request_line_, body_;
};

}  // namespace

TEST(MetricsTest, a_name_and_label_set_is_created_once_and_label_sets_are_distinct_series) {
  Metrics mx(MetricsOptions{});  // port 0: no endpoint, series still counted
  prometheus::Counter& c = mx.counter("excel_unit_steps_total", "Steps done");
  EXPECT_EQ(&mx.counter("excel_unit_steps_total", "Steps done"), &c);
  c.Increment(2);
  mx.counter("excel_unit_steps_total", "Steps done").Increment(3);
  EXPECT_EQ(c.Value(), 5.0);

  prometheus::Counter& a = mx.counter("excel_unit_rows_total", "Rows", {{"split", "a"}});
  prometheus::Counter& b = mx.counter("excel_unit_rows_total", "Rows", {{"split", "b"}});
  EXPECT_NE(&a, &b);
  EXPECT_NE(&a, &mx.counter("excel_unit_rows_total", "Rows"));  // no extra label: a third series
  EXPECT_EQ(&a, &mx.counter("excel_unit_rows_total", "Rows", {{"split", "a"}}));
  a.Increment(7);
  EXPECT_EQ(a.Value(), 7.0);
  EXPECT_EQ(b.Value(), 0.0);

  prometheus::Gauge& g = mx.gauge("excel_unit_loss", "Loss", {{"kind", "seg"}});
  EXPECT_EQ(&mx.gauge("excel_unit_loss", "Loss", {{"kind", "seg"}}), &g);
  EXPECT_NE(&mx.gauge("excel_unit_loss", "Loss", {{"kind", "div"}}), &g);
  g.Set(-2.5);
  EXPECT_EQ(mx.gauge("excel_unit_loss", "Loss", {{"kind", "seg"}}).Value(), -2.5);

  prometheus::Histogram& h = mx.histogram("excel_unit_step_seconds", "Step time", {1, 5});
  EXPECT_EQ(&mx.histogram("excel_unit_step_seconds", "Step time", {1, 5}), &h);
  EXPECT_NE(&mx.histogram("excel_unit_step_seconds", "Step time", {1, 5}, {{"rankset", "x"}}), &h);
  h.Observe(0.5);
  mx.histogram("excel_unit_step_seconds", "Step time", {1, 5}).Observe(3);
  const prometheus::ClientMetric m = h.Collect();
  EXPECT_EQ(m.histogram.sample_count, 2u);
  EXPECT_EQ(m.histogram.sample_sum, 3.5);
}

TEST(MetricsTest, names_must_follow_prometheus_conventions_and_keep_one_type) {
  Metrics mx(MetricsOptions{});
  EXPECT_THROW(mx.counter("excel-bad-name", "dash"), std::invalid_argument);
  EXPECT_THROW(mx.gauge("0_starts_with_a_digit", "digit"), std::invalid_argument);
  EXPECT_THROW(mx.gauge("__reserved", "double underscore"), std::invalid_argument);
  EXPECT_THROW(mx.counter("excel_unit_ok_total", "bad label", {{"bad-label", "x"}}), std::invalid_argument);
  EXPECT_THROW(mx.counter("excel_unit_ok_total", "reserved label", {{"__x", "x"}}), std::invalid_argument);
  mx.counter("excel_unit_typed", "a counter");
  EXPECT_THROW(mx.gauge("excel_unit_typed", "now a gauge"), std::invalid_argument);
  EXPECT_THROW(mx.histogram("excel_unit_typed", "now a histogram", {1}), std::invalid_argument);
  EXPECT_NO_THROW(mx.counter("excel:recorded_rule_total", "colons are allowed in metric names"));
}

TEST(MetricsTest, the_endpoint_serves_help_type_constant_labels_and_the_values_set) {
  MetricsOptions o = served("test");
  ASSERT_GT(o.port, 0);
  Metrics mx(o);
  ASSERT_EQ(mx.bound_port(), o.port);
  mx.counter("excel_unit_steps_total", "Steps done by this rank").Increment(3);
  mx.counter("excel_unit_rows_total", "Rows written", {{"split", "a"}}).Increment(11);
  mx.counter("excel_unit_rows_total", "Rows written", {{"split", "b"}}).Increment(13);
  mx.gauge("excel_unit_loss", "Last loss").Set(-2.5);
  auto& h = mx.histogram("excel_unit_step_seconds", "Wall time per step", {1, 5});
  h.Observe(0.5);
  h.Observe(3);
  h.Observe(7);

  const std::optional<std::string> resp = http_get(o.port, "/metrics");
  ASSERT_TRUE(resp.has_value()) << "nothing listens on 127.0.0.1:" << o.port;
  EXPECT_EQ(resp->rfind("HTTP/1.0 200 OK\r\n", 0), 0u) << *resp;
  EXPECT_NE(resp->find("Content-Type: text/plain; version=0.0.4"), std::string::npos) << *resp;
  const std::string text = body_of(*resp);

  EXPECT_NE(text.find("# HELP excel_unit_steps_total Steps done by this rank\n"), std::string::npos) << text;
  EXPECT_NE(text.find("# TYPE excel_unit_steps_total counter\n"), std::string::npos) << text;
  EXPECT_NE(text.find("# HELP excel_unit_loss Last loss\n"), std::string::npos) << text;
  EXPECT_NE(text.find("# TYPE excel_unit_loss gauge\n"), std::string::npos) << text;
  EXPECT_NE(text.find("# TYPE excel_unit_step_seconds histogram\n"), std::string::npos) << text;

  EXPECT_EQ(series_value(text, "excel_unit_steps_total"), 3.0);
  EXPECT_EQ(series_value(text, "excel_unit_rows_total", {{"split", "a"}}), 11.0);
  EXPECT_EQ(series_value(text, "excel_unit_rows_total", {{"split", "b"}}), 13.0);
  EXPECT_EQ(series_value(text, "excel_unit_loss"), -2.5);
  EXPECT_EQ(series_value(text, "excel_unit_step_seconds_bucket", {{"le", "1"}}), 1.0);
  EXPECT_EQ(series_value(text, "excel_unit_step_seconds_bucket", {{"le", "5"}}), 2.0);
  EXPECT_EQ(series_value(text, "excel_unit_step_seconds_bucket", {{"le", "+Inf"}}), 3.0);
  EXPECT_EQ(series_value(text, "excel_unit_step_seconds_sum"), 10.5);
  EXPECT_EQ(series_value(text, "excel_unit_step_seconds_count"), 3.0);

  // Every series carries the constant labels, the ones made at start-up included.
  const std::map<std::string, std::string> constants = {
      {"job_id", "unit"}, {"rank", "3"}, {"host", metrics::host_name()}, {"phase", "test"}};
  EXPECT_EQ(series_value(text, "excel_unit_steps_total", constants), 3.0);
  EXPECT_EQ(series_value(text, "excel_unit_rows_total",
                         [&] {
                           auto l = constants;
                           l["split"] = "b";
                           return l;
                         }()),
            13.0);
  EXPECT_EQ(series_value(text, "excel_world_size", constants), 4.0);
  const std::optional<double> rss = series_value(text, "process_resident_memory_bytes", constants);
  ASSERT_TRUE(rss.has_value()) << text;
  EXPECT_GT(*rss, 1e6);  // this process holds LibTorch: well over a megabyte
  EXPECT_TRUE(series_value(text, "process_cpu_seconds_total", constants).has_value()) << text;
  const double now = std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
  const std::optional<double> start = series_value(text, "process_start_time_seconds", constants);
  ASSERT_TRUE(start.has_value()) << text;
  EXPECT_LE(*start, now);
  EXPECT_GT(*start, now - 3600);

  // Values move between scrapes; other paths are 404.
  mx.counter("excel_unit_steps_total", "Steps done by this rank").Increment(1);
  EXPECT_EQ(series_value(body_of(http_get(o.port, "/metrics").value_or("")), "excel_unit_steps_total"), 4.0);
  const std::optional<std::string> other = http_get(o.port, "/");
  ASSERT_TRUE(other.has_value());
  EXPECT_EQ(other->rfind("HTTP/1.0 404 Not Found\r\n", 0), 0u) << *other;
  mx.finish();
}

TEST(MetricsTest, port_zero_serves_nothing_and_writes_no_target_file) {
  const std::string dir = test::temp_dir("metrics_nosd");
  MetricsOptions o;
  o.port = 0;
  o.sd_dir = dir + "/sd";
  Metrics mx(o);
  EXPECT_EQ(mx.bound_port(), 0);
  EXPECT_EQ(mx.target_file(), "");
  EXPECT_FALSE(fs::exists(dir + "/sd"));
  mx.finish();
  fs::remove_all(dir);
}

TEST(MetricsTest, bind_failures_are_config_errors_naming_the_address) {
  MetricsOptions bad = served("test");
  bad.bind = "localhost";  // a name, not an IPv4 address
  try {
    Metrics mx(bad);
    ADD_FAILURE() << "bound to 'localhost'";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("'localhost'"), std::string::npos) << e.what();
  }
  MetricsOptions o = served("test");
  Metrics first(o);
  try {
    Metrics second(o);  // the same port, already listening
    ADD_FAILURE() << "two endpoints on 127.0.0.1:" << o.port;
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("127.0.0.1:" + std::to_string(o.port)), std::string::npos) << e.what();
  }
  first.finish();
}

namespace {
// The groups of a target file as (rank label, targets); fails the test on anything else.
std::vector<std::pair<std::string, std::vector<std::string>>> target_groups(const std::string& path) {
  std::ifstream in(path);
  const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const nlohmann::json doc = nlohmann::json::parse(text, nullptr, false);
  std::vector<std::pair<std::string, std::vector<std::string>>> out;
  EXPECT_TRUE(doc.is_array()) << path << ": " << text;
  if (!doc.is_array()) return out;
  for (const auto& g : doc) {
    EXPECT_TRUE(g.is_object() && g.size() == 2 && g.contains("targets") && g.contains("labels")) << text;
    std::vector<std::string> targets;
    for (const auto& t : g.value("targets", nlohmann::json::array())) targets.push_back(t.get<std::string>());
    const auto labels = g.value("labels", nlohmann::json::object());
    EXPECT_EQ(labels.size(), 1u) << text;  // only the hidden rank label: nothing to clash with the samples'
    out.emplace_back(labels.value("__meta_excel_rank", ""), targets);
  }
  return out;
}

using Groups = std::vector<std::pair<std::string, std::vector<std::string>>>;
}  // namespace

TEST(MetricsTest, finish_removes_the_target_file_and_stops_the_endpoint_once) {
  const std::string dir = test::temp_dir("metrics_sd");
  MetricsOptions o = served("train");
  o.sd_dir = dir + "/sd";  // created when missing
  Metrics mx(o);
  const std::string want = dir + "/sd/excel_unit_train_" + metrics::host_name() + ".json";
  EXPECT_EQ(mx.target_file(), want);
  ASSERT_TRUE(fs::exists(want));
  EXPECT_EQ(target_groups(want), (Groups{{"3", {"127.0.0.1:" + std::to_string(o.port)}}}));
  ASSERT_TRUE(http_get(o.port, "/metrics").has_value());

  mx.finish();
  EXPECT_FALSE(fs::exists(want));
  EXPECT_FALSE(http_get(o.port, "/metrics").has_value()) << "still serving after finish()";
  EXPECT_NO_THROW(mx.finish());  // a second call does nothing
  EXPECT_TRUE(fs::is_empty(dir + "/sd"));  // no lock file either
  fs::remove_all(dir);
}

TEST(MetricsTest, the_destructor_finishes) {
  const std::string dir = test::temp_dir("metrics_dtor");
  MetricsOptions o = served("eval");
  o.sd_dir = dir;
  std::string target;
  {
    Metrics mx(o);
    target = mx.target_file();
    ASSERT_TRUE(fs::exists(target));
  }
  EXPECT_FALSE(fs::exists(target));
  EXPECT_FALSE(http_get(o.port, "/metrics").has_value());
  fs::remove_all(dir);
}

// Ranks of one host start and exit at the same time, over and over: the host's one file is valid
// JSON whenever a reader looks, lists every rank once they have all started, and is gone (with its
// lock) once they have all finished.
TEST(MetricsTest, ranks_of_a_host_share_one_target_file_while_starting_and_exiting_together) {
  const std::string dir = test::temp_dir("metrics_sd_shared");
  constexpr int kRanks = 8, kRounds = 4;
  const std::string file = metrics::host_target_file(dir, "unit", "train", metrics::host_name());
  std::atomic<bool> stop{false};
  std::atomic<int> reads{0}, invalid{0};
  std::thread reader([&] {
    while (!stop) {
      std::ifstream in(file);
      if (!in) {
        std::this_thread::yield();
        continue;
      }
      const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
      const nlohmann::json doc = nlohmann::json::parse(text, nullptr, false);
      ++reads;
      if (!doc.is_array() || doc.empty()) ++invalid;
    }
  });
  for (int round = 0; round < kRounds; ++round) {
    std::vector<int> ports;
    while (static_cast<int>(ports.size()) < kRanks) {
      const int p = free_port();
      if (p > 0 && std::find(ports.begin(), ports.end(), p) == ports.end()) ports.push_back(p);
    }
    std::atomic<int> started{0};
    std::atomic<bool> go{false};
    std::vector<std::thread> ranks;
    std::vector<std::string> errors(kRanks);
    for (int r = 0; r < kRanks; ++r)
      ranks.emplace_back([&, r] {
        try {
          MetricsOptions o = served("train");
          o.rank = r;
          o.world_size = kRanks;
          o.port = ports[r];
          o.sd_dir = dir;
          Metrics mx(o);
          ++started;
          while (!go) std::this_thread::sleep_for(std::chrono::milliseconds(1));
          mx.finish();
        } catch (const std::exception& e) {
          errors[r] = e.what();
          ++started;
        }
      });
    while (started < kRanks) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    Groups want;
    for (int r = 0; r < kRanks; ++r) want.push_back({std::to_string(r), {"127.0.0.1:" + std::to_string(ports[r])}});
    EXPECT_EQ(target_groups(file), want) << "round " << round;
    go = true;
    for (auto& t : ranks) t.join();
    for (int r = 0; r < kRanks; ++r) EXPECT_EQ(errors[r], "") << "rank " << r;
    EXPECT_FALSE(fs::exists(file)) << "round " << round;
    EXPECT_TRUE(fs::is_empty(dir)) << "round " << round << ": the lock or a temporary is left";
  }
  stop = true;
  reader.join();
  EXPECT_EQ(invalid.load(), 0) << "of " << reads.load() << " reads";
  std::cout << "[figure] shared target file: " << reads.load() << " reads during " << kRounds << " rounds of "
            << kRanks << " ranks starting and exiting together, " << invalid.load() << " not a valid target list\n";
  fs::remove_all(dir);
}

// A rank killed with SIGKILL leaves its group behind; the rank restarted (same rank, another
// port) or a new rank on the same port replaces it instead of adding one, the other ranks' groups
// stay, and a rank that exits removes only its own group.
TEST(MetricsTest, a_restarted_rank_replaces_its_stale_target) {
  const std::string dir = test::temp_dir("metrics_sd_stale");
  MetricsOptions o = served("train");  // rank 3
  o.sd_dir = dir;
  const std::string file = metrics::host_target_file(dir, "unit", "train", metrics::host_name());
  const std::string mine = "127.0.0.1:" + std::to_string(o.port);
  atomic_write(file,
               "[{\"targets\": [\"127.0.0.1:1\"], \"labels\": {\"__meta_excel_rank\": \"3\"}},\n"
               " {\"targets\": [\"127.0.0.1:2\"], \"labels\": {\"__meta_excel_rank\": \"5\"}},\n"
               " {\"targets\": [\"" + mine + "\"], \"labels\": {\"__meta_excel_rank\": \"9\"}}]\n");
  auto first = std::make_unique<Metrics>(o);
  EXPECT_EQ(target_groups(file), (Groups{{"3", {mine}}, {"5", {"127.0.0.1:2"}}}));
  // Rank 3 again, on another port, while the first is still there: the newer one wins.
  MetricsOptions again = o;
  again.port = free_port();
  const std::string newer = "127.0.0.1:" + std::to_string(again.port);
  auto second = std::make_unique<Metrics>(again);
  EXPECT_EQ(target_groups(file), (Groups{{"3", {newer}}, {"5", {"127.0.0.1:2"}}}));
  first->finish();  // its group is no longer in the file: nothing of the newer one is removed
  EXPECT_EQ(target_groups(file), (Groups{{"3", {newer}}, {"5", {"127.0.0.1:2"}}}));
  second->finish();
  EXPECT_EQ(target_groups(file), (Groups{{"5", {"127.0.0.1:2"}}}));
  fs::remove_all(dir);
}

TEST(MetricsTest, linger_keeps_serving_during_finish) {
  MetricsOptions o = served("eval");
  o.linger_s = 2;
  Metrics mx(o);
  mx.gauge("excel_unit_last", "Last value").Set(42);
  const auto t0 = std::chrono::steady_clock::now();
  std::future<void> done = std::async(std::launch::async, [&mx] { mx.finish(); });
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  const std::optional<std::string> during = http_get(o.port, "/metrics");
  done.get();
  const double took = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  ASSERT_TRUE(during.has_value()) << "not serving during the linger";
  EXPECT_EQ(series_value(body_of(*during), "excel_unit_last"), 42.0);
  EXPECT_GE(took, 2.0);
  EXPECT_FALSE(http_get(o.port, "/metrics").has_value());
}

TEST(MetricsTest, finish_pushes_the_final_values_to_the_pushgateway) {
  FakePushgateway gw;
  MetricsOptions o;
  o.job_id = "unit";
  o.rank = 1;
  o.phase = "precompute";
  o.pushgateway = "127.0.0.1:" + std::to_string(gw.port());
  Metrics mx(o);
  mx.counter("excel_unit_rows_total", "Rows written").Increment(17);
  mx.finish();
  const auto [line, body] = gw.request();
  // <method> /metrics/job/excel/<grouping labels>: each rank pushes to a group of its own. The
  // method is prometheus-cpp's choice (POST in 1.0), so either PUT or POST is accepted.
  EXPECT_TRUE(line.rfind("PUT /metrics/job/excel/", 0) == 0 || line.rfind("POST /metrics/job/excel/", 0) == 0) << line;
  EXPECT_NE(line.find("/job_id/unit"), std::string::npos) << line;
  EXPECT_NE(line.find("/rank/1"), std::string::npos) << line;
  EXPECT_NE(line.find("/phase/precompute"), std::string::npos) << line;
  EXPECT_NE(body.find("# TYPE excel_unit_rows_total counter"), std::string::npos) << body;
  EXPECT_EQ(series_value(body, "excel_unit_rows_total", {{"rank", "1"}, {"phase", "precompute"}}), 17.0) << body;
}

TEST(MetricsTest, a_malformed_pushgateway_is_a_config_error_and_an_unreachable_one_is_not) {
  MetricsOptions o;
  o.pushgateway = "no_port_here";
  Metrics bad(o);
  try {
    bad.finish();
    ADD_FAILURE() << "finish() accepted a Pushgateway without a port";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("'no_port_here'"), std::string::npos) << e.what();
  }
  // Nothing listens there: the push fails, is logged, and finish() returns.
  o.pushgateway = "127.0.0.1:" + std::to_string(free_port());
  Metrics unreachable(o);
  EXPECT_NO_THROW(unreachable.finish());
}

TEST(MetricsTest, progress_metrics_derive_ratio_and_eta) {
  Metrics mx(MetricsOptions{});
  metrics::ProgressMetrics p(&mx, "excel_unit", "rows", "block");
  p.planned(10);
  EXPECT_EQ(mx.gauge("excel_unit_rows_planned", "").Value(), 10.0);
  // 4 of 10 rows after 2 s: ratio 0.4, ETA = 2 s / 4 rows x 6 rows left = 3 s.
  p.advance(4, 0.5, 4, 10, 2.0);
  EXPECT_EQ(mx.counter("excel_unit_rows_total", "").Value(), 4.0);
  EXPECT_DOUBLE_EQ(mx.gauge("excel_unit_progress_ratio", "").Value(), 0.4);
  EXPECT_DOUBLE_EQ(mx.gauge("excel_unit_eta_seconds", "").Value(), 3.0);
  // 7 of 12 after 3.5 s (the plan grew): ETA = 3.5 / 7 x 5 = 2.5 s.
  p.advance(3, 0.25, 7, 12, 3.5);
  EXPECT_EQ(mx.counter("excel_unit_rows_total", "").Value(), 7.0);
  EXPECT_EQ(mx.gauge("excel_unit_rows_planned", "").Value(), 12.0);
  EXPECT_DOUBLE_EQ(mx.gauge("excel_unit_progress_ratio", "").Value(), 7.0 / 12.0);
  EXPECT_DOUBLE_EQ(mx.gauge("excel_unit_eta_seconds", "").Value(), 2.5);
  const prometheus::ClientMetric h = mx.histogram("excel_unit_block_seconds", "", metrics::seconds_buckets()).Collect();
  EXPECT_EQ(h.histogram.sample_count, 2u);
  EXPECT_EQ(h.histogram.sample_sum, 0.75);
  p.finished();
  EXPECT_EQ(mx.gauge("excel_unit_progress_ratio", "").Value(), 1.0);
  EXPECT_EQ(mx.gauge("excel_unit_eta_seconds", "").Value(), 0.0);
  // Nothing done yet: ETA 0, not a division by zero; a plan of 0 gives ratio done / 1.
  p.advance(0, 0.0, 0, 0, 1.0);
  EXPECT_EQ(mx.gauge("excel_unit_eta_seconds", "").Value(), 0.0);
  EXPECT_EQ(mx.gauge("excel_unit_progress_ratio", "").Value(), 0.0);
  // Without a registry every call is a no-op.
  metrics::ProgressMetrics none(nullptr, "excel_unit", "rows", "block");
  EXPECT_NO_THROW(none.planned(3));
  EXPECT_NO_THROW(none.advance(1, 0.1, 1, 3, 0.1));
  EXPECT_NO_THROW(none.finished());
}

TEST(MetricsTest, seconds_buckets_and_host_name) {
  const std::vector<double> b = metrics::seconds_buckets();
  ASSERT_EQ(b.size(), 16u);
  EXPECT_EQ(b.front(), 0.001);
  EXPECT_EQ(b.back(), 100.0);
  for (size_t i = 1; i < b.size(); ++i) EXPECT_LT(b[i - 1], b[i]) << i;
  char buf[256] = {0};
  ASSERT_EQ(::gethostname(buf, sizeof(buf) - 1), 0);
  EXPECT_EQ(metrics::host_name(), std::string(buf));
}

TEST(MetricsTest, a_scrape_is_answered_while_50_slow_clients_are_connected) {
  MetricsOptions o = served("test");
  Metrics mx(o);
  mx.gauge("excel_unit_last", "Last value").Set(42);
  // 25 clients connect and send nothing; 25 send a request one byte every 0.5 s.
  std::vector<int> idle, trickle;
  for (int i = 0; i < 50; ++i) {
    const int fd = connect_local(o.port);
    ASSERT_GE(fd, 0) << "connection " << i;
    (i % 2 ? trickle : idle).push_back(fd);
  }
  std::atomic<bool> stop{false};
  std::thread trickler([&] {
    const std::string req = "GET /metrics HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n";
    for (size_t k = 0; !stop; ++k) {
      for (int fd : trickle) ::send(fd, req.data() + (k % req.size()), 1, MSG_NOSIGNAL | MSG_DONTWAIT);
      for (int t = 0; t < 5 && !stop; ++t) std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(700));  // every client connected and trickling

  for (int round = 0; round < 3; ++round) {
    const auto t0 = std::chrono::steady_clock::now();
    const std::optional<std::string> resp = http_get(o.port, "/metrics");
    const double took = seconds_since(t0);
    std::printf("[scrape latency] %.1f ms with %zu idle and %zu trickling clients connected\n", 1e3 * took, idle.size(),
                trickle.size());
    ASSERT_TRUE(resp.has_value());
    EXPECT_EQ(resp->rfind("HTTP/1.0 200 OK\r\n", 0), 0u) << *resp;
    EXPECT_EQ(series_value(body_of(*resp), "excel_unit_last"), 42.0);
    EXPECT_LT(took, 5.0) << "a scrape waited behind slow clients";
  }

  // The read deadline (5 s from the connection) closes a client that never completes its
  // request: recv sees the end of the stream, not its own 10 s timeout.
  const auto t1 = std::chrono::steady_clock::now();
  char byte;
  EXPECT_EQ(::recv(idle.front(), &byte, 1, 0), 0) << "an idle client was not closed by the server";
  EXPECT_LT(seconds_since(t1), 6.0);

  stop = true;
  trickler.join();
  // Stopping does not wait for the clients either (all still open; the server closed some).
  const auto t2 = std::chrono::steady_clock::now();
  mx.finish();
  const double stop_s = seconds_since(t2);
  std::printf("[finish] %.1f ms\n", 1e3 * stop_s);
  EXPECT_LT(stop_s, 2.0);
  EXPECT_FALSE(http_get(o.port, "/metrics").has_value());
  for (int fd : idle) ::close(fd);
  for (int fd : trickle) ::close(fd);
}

TEST(MetricsTest, two_scrapes_at_once_both_succeed) {
  MetricsOptions o = served("test");
  Metrics mx(o);
  mx.counter("excel_unit_steps_total", "Steps").Increment(5);
  // One scrape in progress: its request half sent.
  const int first = connect_local(o.port);
  ASSERT_GE(first, 0);
  const std::string head = "GET /metrics HTTP/1.0\r\n";
  ::send(first, head.data(), head.size(), MSG_NOSIGNAL);
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  // A second one, and two more at the same moment, are answered meanwhile.
  std::future<std::optional<std::string>> a =
      std::async(std::launch::async, [&] { return http_get(o.port, "/metrics"); });
  std::future<std::optional<std::string>> b =
      std::async(std::launch::async, [&] { return http_get(o.port, "/metrics"); });
  for (auto* f : {&a, &b}) {
    const std::optional<std::string> r = f->get();
    ASSERT_TRUE(r.has_value());
    EXPECT_EQ(r->rfind("HTTP/1.0 200 OK\r\n", 0), 0u) << *r;
    EXPECT_EQ(series_value(body_of(*r), "excel_unit_steps_total"), 5.0);
  }
  // The first completes its request and gets its answer too.
  const std::string rest = "Host: 127.0.0.1\r\n\r\n";
  ::send(first, rest.data(), rest.size(), MSG_NOSIGNAL);
  std::string resp;
  char buf[4096];
  for (ssize_t n; (n = ::recv(first, buf, sizeof(buf), 0)) > 0;) resp.append(buf, static_cast<size_t>(n));
  ::close(first);
  EXPECT_EQ(resp.rfind("HTTP/1.0 200 OK\r\n", 0), 0u) << resp;
  EXPECT_EQ(series_value(body_of(resp), "excel_unit_steps_total"), 5.0);
  mx.finish();
}

TEST(MetricsTest, only_get_and_head_of_exactly_metrics_are_served) {
  MetricsOptions o = served("test");
  Metrics mx(o);
  auto status_of = [&](const std::string& raw) {
    const std::string r = exchange(o.port, raw).value_or("");
    return r.substr(0, r.find("\r\n"));
  };
  EXPECT_EQ(status_of("GET /metricsX HTTP/1.0\r\n\r\n"), "HTTP/1.0 404 Not Found");
  EXPECT_EQ(status_of("GET /metrics/ HTTP/1.0\r\n\r\n"), "HTTP/1.0 404 Not Found");
  EXPECT_EQ(status_of("GET / HTTP/1.1\r\nHost: x\r\n\r\n"), "HTTP/1.0 404 Not Found");
  EXPECT_EQ(status_of("GET /metrics?format=text HTTP/1.1\r\nHost: x\r\n\r\n"), "HTTP/1.0 200 OK");
  const std::string post = exchange(o.port, "POST /metrics HTTP/1.0\r\nContent-Length: 3\r\n\r\nabc").value_or("");
  EXPECT_EQ(post.rfind("HTTP/1.0 405 Method Not Allowed\r\n", 0), 0u) << post;
  EXPECT_NE(post.find("Allow: GET, HEAD\r\n"), std::string::npos) << post;
  EXPECT_EQ(status_of("DELETE /metrics HTTP/1.0\r\n\r\n"), "HTTP/1.0 405 Method Not Allowed");
  EXPECT_EQ(status_of("GET /metrics\r\n\r\n"), "HTTP/1.0 400 Bad Request");
  EXPECT_EQ(status_of("nonsense\r\n\r\n"), "HTTP/1.0 400 Bad Request");
  // HEAD: the headers of a scrape, no body.
  const std::string head = exchange(o.port, "HEAD /metrics HTTP/1.0\r\n\r\n").value_or("");
  EXPECT_EQ(head.rfind("HTTP/1.0 200 OK\r\n", 0), 0u) << head;
  EXPECT_EQ(body_of(head), "");
  EXPECT_NE(head.find("Content-Length: "), std::string::npos) << head;
  // A request head over 8 KiB is refused, not buffered.
  const std::string big = "GET /metrics HTTP/1.0\r\nX-Filler: " + std::string(9000, 'x') + "\r\n\r\n";
  EXPECT_EQ(status_of(big), "HTTP/1.0 431 Request Header Fields Too Large");
  // A client that closes after half a request does no harm.
  const int fd = connect_local(o.port);
  ::send(fd, "GET /met", 8, MSG_NOSIGNAL);
  ::close(fd);
  EXPECT_EQ(status_of("GET /metrics HTTP/1.0\r\n\r\n"), "HTTP/1.0 200 OK");
  mx.finish();
}

TEST(MetricsTest, an_ipv6_bind_address_serves_on_the_ipv6_loopback) {
  // A free port on ::1, or a skip when this machine has no IPv6 loopback.
  const int probe = ::socket(AF_INET6, SOCK_STREAM, 0);
  sockaddr_in6 a{};
  a.sin6_family = AF_INET6;
  a.sin6_addr = in6addr_loopback;
  if (probe < 0 || ::bind(probe, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0) {
    if (probe >= 0) ::close(probe);
    GTEST_SKIP() << "no IPv6 loopback (::1) on this machine";
  }
  socklen_t len = sizeof(a);
  ::getsockname(probe, reinterpret_cast<sockaddr*>(&a), &len);
  ::close(probe);
  const std::string dir = test::temp_dir("metrics_ipv6");
  MetricsOptions o = served("test");
  o.bind = "::1";
  o.port = ntohs(a.sin6_port);
  o.sd_dir = dir;
  Metrics mx(o);
  mx.gauge("excel_unit_last", "Last value").Set(7);
  std::ifstream in(mx.target_file());
  const std::string target((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_NE(target.find("\"[::1]:" + std::to_string(o.port) + "\""), std::string::npos) << target;

  const int fd = ::socket(AF_INET6, SOCK_STREAM, 0);
  ASSERT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)), 0) << std::strerror(errno);
  timeval tv{10, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  const std::string req = "GET /metrics HTTP/1.0\r\nHost: [::1]\r\n\r\n";
  ::send(fd, req.data(), req.size(), MSG_NOSIGNAL);
  std::string resp;
  char buf[4096];
  for (ssize_t n; (n = ::recv(fd, buf, sizeof(buf), 0)) > 0;) resp.append(buf, static_cast<size_t>(n));
  ::close(fd);
  EXPECT_EQ(resp.rfind("HTTP/1.0 200 OK\r\n", 0), 0u) << resp;
  EXPECT_EQ(series_value(body_of(resp), "excel_unit_last"), 7.0);
  mx.finish();
  fs::remove_all(dir);

  // Bracketed literals are accepted; a bracketed IPv4 address is not.
  MetricsOptions bracketed = served("test");
  bracketed.bind = "[::1]";
  bracketed.port = o.port;  // free again
  EXPECT_NO_THROW(Metrics{bracketed});
  MetricsOptions bad = served("test");
  bad.bind = "[127.0.0.1]";
  EXPECT_THROW(Metrics{bad}, ConfigError);
}
