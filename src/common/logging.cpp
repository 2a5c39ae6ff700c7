#include "excel/common/logging.h"

#include <glog/logging.h>

#include <cstdio>

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
  FLAGS_logtostderr = true;
  google::InitGoogleLogging(argv0 ? argv0 : "excel", &rank_prefix, nullptr);
  google::InstallFailureSignalHandler();
}

}  // namespace excel
