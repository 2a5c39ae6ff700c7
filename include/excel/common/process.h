// Process set-up shared by every executable: memory, threads and denormals, and the rank and
// world size the launcher (mpirun or srun) gave this process.
#pragma once
#include <string>

namespace excel {

// The CPUs this process (its calling thread) may run on, and whether the launcher bound it to them:
// fewer than its parent process (the launcher's daemon, or a wrapper that did not exec) may use.
struct CpuShare {
  int allowed = 1;
  bool bound = false;
};
CpuShare cpu_share();

// Process-wide tuning for large-tensor workloads: glibc keeps freed blocks up to 32 MB instead
// of returning them with munmap (otherwise every temporary costs page faults); LibTorch's intra-op
// threads and OpenBLAS's own pool are both set to `threads` (0: cpu_share()'s allowed CPUs, divided
// by the local ranks unless the launcher bound the process to them; at least 1); denormals are
// flushed to zero. Returns the thread count.
int configure_process(int threads = 0, int local_ranks = 1);

// Rank of this process from OpenMPI or SLURM environment variables (0 when absent).
int launcher_rank();
int launcher_world_size();
// Rank among this node's processes from the launcher (OMPI_COMM_WORLD_LOCAL_RANK, SLURM_LOCALID; 0).
int launcher_local_rank();

// This machine's host name ("unknown" when it cannot be read).
std::string host_name();
// The IPv4 address host_name() resolves to (/etc/hosts, DNS); throws ConfigError naming the host
// when it does not resolve or resolves only to a loopback address.
std::string host_address();

}  // namespace excel
