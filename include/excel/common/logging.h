// glog set-up shared by every executable: rank-prefixed lines on stderr.
#pragma once

namespace excel {

// Initialises glog for argv0; `rank` < 0 reads it from the launcher environment.
void init_logging(const char* argv0, int rank = -1);

// Rank of this process from OpenMPI or SLURM environment variables (0 when absent).
int launcher_rank();
int launcher_world_size();

}  // namespace excel
