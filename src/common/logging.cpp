#include "excel/common/logging.h"

#include <glog/logging.h>
#include <malloc.h>
#include <sched.h>
#include <torch/torch.h>

#include <cstdlib>
#include <string>

namespace excel {
namespace {

int env_int(const char* a, const char* b, int fallback) {
  for (const char* name : {a, b}) {
    if (const char* v = std::getenv(name)) return std::atoi(v);
  }
  return fallback;
}

}  // namespace

int launcher_rank() { return env_int("OMPI_COMM_WORLD_RANK", "SLURM_PROCID", 0); }
int launcher_world_size() { return env_int("OMPI_COMM_WORLD_SIZE", "SLURM_NTASKS", 1); }

void configure_process(int threads, int local_ranks) {
  mallopt(M_MMAP_THRESHOLD, 32 << 20);  // the largest glibc accepts; bigger blocks are mmap'd
  mallopt(M_TRIM_THRESHOLD, 1 << 30);
  if (threads <= 0) {
    cpu_set_t set;
    int cores = sched_getaffinity(0, sizeof(set), &set) == 0 ? CPU_COUNT(&set) : 1;
    threads = std::max(1, cores / std::max(1, local_ranks));
  }
  torch::set_num_threads(threads);
  // Softmax over peaked attention produces denormals, which are ~50x slower on x86.
  at::globalContext().setFlushDenormal(true);
}

void init_logging(const char* argv0, int rank) {
  static bool done = false;
  if (done) return;
  done = true;
  if (rank < 0) rank = launcher_rank();
  static std::string prefix = "rank" + std::to_string(rank);
  FLAGS_logtostderr = true;
  google::InitGoogleLogging(argv0 ? argv0 : prefix.c_str());
  google::InstallFailureSignalHandler();
  // glog 0.6 has no custom prefix hook: put the rank into the program name instead.
  (void)prefix;
}

}  // namespace excel
