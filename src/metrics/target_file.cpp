#include "excel/metrics/target_file.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <sstream>

#include <glog/logging.h>
#include <nlohmann/json.hpp>

#include "excel/common/atomic_file.h"
#include "excel/common/errors.h"

namespace excel::metrics {
namespace {
namespace fs = std::filesystem;
using nlohmann::json;

constexpr const char* kRankLabel = "__meta_excel_rank";

// An exclusive flock on `path` (created if missing), released by the destructor. The holder may
// unlink the file; a process that was waiting on the unlinked inode sees that it no longer is
// the file at `path` and locks the current one instead, so that two holders never coexist.
class HostLock {
 public:
  explicit HostLock(std::string path) : path_(std::move(path)) {
    for (;;) {
      fd_ = ::open(path_.c_str(), O_RDONLY | O_CREAT | O_CLOEXEC, 0644);  // flock needs no write access
      if (fd_ < 0) throw InputError(path_ + ": cannot open the target file lock: " + std::strerror(errno));
      while (::flock(fd_, LOCK_EX) != 0) {
        if (errno == EINTR) continue;
        const std::string err = std::strerror(errno);
        ::close(fd_);
        throw InputError(path_ + ": cannot lock (flock): " + err + "; give --metrics_sd_dir a folder that supports it");
      }
      struct stat held {}, now {};
      if (::fstat(fd_, &held) == 0 && ::stat(path_.c_str(), &now) == 0 && held.st_dev == now.st_dev &&
          held.st_ino == now.st_ino)
        return;
      ::close(fd_);  // unlinked (or replaced) by the previous holder: lock the current file
    }
  }
  ~HostLock() { ::close(fd_); }
  HostLock(const HostLock&) = delete;
  HostLock& operator=(const HostLock&) = delete;
  void unlink() const { ::unlink(path_.c_str()); }  // while held

 private:
  std::string path_;
  int fd_ = -1;
};

// The groups of `file` (none when it is missing; an unreadable one is reported and dropped).
json read_groups(const std::string& file) {
  std::ifstream in(file, std::ios::binary);
  if (!in) return json::array();
  std::stringstream text;
  text << in.rdbuf();
  json doc = json::parse(text.str(), nullptr, /*allow_exceptions=*/false);
  if (!doc.is_array()) {
    LOG(WARNING) << file << ": not a file_sd target list; starting it again";
    return json::array();
  }
  return doc;
}

std::string group_rank(const json& g) {
  if (!g.is_object() || !g.contains("labels") || !g["labels"].is_object()) return "";
  const json& labels = g["labels"];
  return labels.contains(kRankLabel) && labels[kRankLabel].is_string() ? labels[kRankLabel].get<std::string>() : "";
}

// The rank of a group as a number (-1: none, or not a number).
long long rank_number(const json& g) {
  const std::string r = group_rank(g);
  if (r.empty() || r.size() > 9 || r.find_first_not_of("0123456789") != std::string::npos) return -1;
  return std::stoll(r);
}

bool group_has_target(const json& g, const std::string& target) {
  if (!g.is_object() || !g.contains("targets") || !g["targets"].is_array()) return false;
  for (const json& t : g["targets"])
    if (t.is_string() && t.get<std::string>() == target) return true;
  return false;
}

// Locked read-modify-write of `file`: `edit` changes the groups; no group left removes the file.
void update(const std::string& file, const std::function<void(json&)>& edit) {
  HostLock lock(file + ".lock");
  json groups = read_groups(file);
  edit(groups);
  if (groups.empty()) {
    std::error_code ec;
    fs::remove(file, ec);
    if (ec) throw InputError(file + ": cannot remove: " + ec.message());
    lock.unlink();
    return;
  }
  std::string text = "[\n";
  for (size_t i = 0; i < groups.size(); ++i) text += "  " + groups[i].dump() + (i + 1 < groups.size() ? ",\n" : "\n");
  atomic_write(file, text + "]\n");
}

}  // namespace

std::string host_target_file(const std::string& sd_dir, const std::string& job_id, const std::string& phase,
                             const std::string& host) {
  return sd_dir + "/excel_" + job_id + "_" + phase + "_" + host + ".json";
}

void add_target(const std::string& file, int rank, const std::string& target) {
  const std::string r = std::to_string(rank);
  update(file, [&](json& groups) {
    json kept = json::array();
    for (json& g : groups)
      if (group_rank(g) != r && !group_has_target(g, target)) kept.push_back(std::move(g));
    json mine = {{"targets", {target}}, {"labels", {{kRankLabel, r}}}};
    // In rank order, so that the file reads the same whatever order the ranks started in.
    auto at = kept.begin();
    while (at != kept.end() && rank_number(*at) < rank) ++at;
    kept.insert(at, std::move(mine));
    groups = std::move(kept);
  });
}

void remove_target(const std::string& file, int rank, const std::string& target) {
  const std::string r = std::to_string(rank);
  update(file, [&](json& groups) {
    json kept = json::array();
    for (json& g : groups)
      if (!(group_rank(g) == r && group_has_target(g, target))) kept.push_back(std::move(g));
    groups = std::move(kept);
  });
}

}  // namespace excel::metrics
