#include "excel/common/logging.h"

#include <glog/logging.h>

#include <cstdio>
#include <filesystem>
#include <string>
#include <system_error>

#include "excel/common/process.h"

namespace excel {
namespace {
int log_rank = 0;

// "I1125 18:51:23.224080 rank1 7553 trainer.cpp:190] message"
void rank_prefix(std::ostream& s, const google::LogMessageInfo& l, void*) {
  char buf[96];
  std::snprintf(buf, sizeof(buf), "%c%02d%02d %02d:%02d:%02d.%06d rank%d %5d %s:%d]", l.severity[0], 1 + l.time.month(),
                l.time.day(), l.time.hour(), l.time.min(), l.time.sec(), static_cast<int>(l.time.usec()), log_rank,
                l.thread_id, l.filename, l.line_number);
  s << buf;
}
}  // namespace

void init_logging(const char* argv0, int rank) {
  static bool done = false;
  if (done) return;
  done = true;
  log_rank = rank < 0 ? launcher_rank() : rank;
  if (FLAGS_log_dir.empty()) {
    FLAGS_logtostderr = true;  // the launcher's stderr only
  } else {
    // Files in --log_dir (one per severity and process, named after the rank), and every line
    // on stderr as well so that launchers still show the progress.
    std::error_code ec;
    std::filesystem::create_directories(FLAGS_log_dir, ec);
    FLAGS_logtostderr = false;
    FLAGS_alsologtostderr = true;
  }
  google::InitGoogleLogging(argv0 ? argv0 : "excel", &rank_prefix, nullptr);
  // After InitGoogleLogging, which names the <program>.<SEVERITY> links to the newest files.
  if (!FLAGS_log_dir.empty()) google::SetLogFilenameExtension((".rank" + std::to_string(log_rank)).c_str());
  google::InstallFailureSignalHandler();
}

void log_error_and_flush(const std::string& message, const char* file, int line) {
  google::LogMessage(file, line, google::GLOG_ERROR).stream() << message;
  google::FlushLogFiles(google::GLOG_INFO);
}

}  // namespace excel
