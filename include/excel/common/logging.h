// glog set-up shared by every executable: rank-prefixed lines on stderr and, with --log_dir,
// in log files there as well.
#pragma once
#include <string>

namespace excel {

// Initialises glog for argv0 with "rankN" in every line's prefix; `rank` < 0 reads it from the
// launcher environment. Without --log_dir every line goes to stderr only (glog's logtostderr);
// with --log_dir=DIR (created when missing) glog writes its files there, named
// <program>.<host>.<user>.log.<SEVERITY>.<time>.<pid>.rank<N>, and still copies every line to
// stderr (alsologtostderr).
void init_logging(const char* argv0, int rank = -1);

// LOG(ERROR) of `message` (the caller's file and line in the prefix), then every buffered log
// line written out: for the error that ends a tool, before its exit or MPI_Abort.
void log_error_and_flush(const std::string& message, const char* file = __builtin_FILE(), int line = __builtin_LINE());

}  // namespace excel
