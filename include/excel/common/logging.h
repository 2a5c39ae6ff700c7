// glog set-up shared by every executable: rank-prefixed lines on stderr.
#pragma once

namespace excel {

// Initialises glog for argv0 with "rankN" in every line's prefix; `rank` < 0 reads it from the
// launcher environment.
void init_logging(const char* argv0, int rank = -1);

// Process-wide tuning for large-tensor workloads: glibc keeps freed blocks up to 32 MB instead
// of returning them with munmap (otherwise every temporary costs page faults); LibTorch's intra-op
// threads and OpenBLAS's own pool are both set to `threads` (0: the cores available to this
// process, divided by the local ranks unless the launcher already bound the process to a subset);
// denormals are flushed to zero. Returns the thread count.
int configure_process(int threads = 0, int local_ranks = 1);

// Rank of this process from OpenMPI or SLURM environment variables (0 when absent).
int launcher_rank();
int launcher_world_size();

}  // namespace excel
