#include "excel/common/process.h"

#include <arpa/inet.h>
#include <malloc.h>
#include <netdb.h>
#include <sched.h>
#include <torch/torch.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>

#include "excel/common/blas.h"
#include "excel/common/errors.h"

namespace excel {
namespace {

int env_int(const char* a, const char* b, int fallback) {
  for (const char* name : {a, b}) {
    if (const char* v = std::getenv(name)) return std::atoi(v);
  }
  return fallback;
}

}  // namespace

int launcher_rank() {
  return env_int("OMPI_COMM_WORLD_RANK", "SLURM_PROCID", 0);
}
int launcher_world_size() {
  return env_int("OMPI_COMM_WORLD_SIZE", "SLURM_NTASKS", 1);
}
int launcher_local_rank() {
  return env_int("OMPI_COMM_WORLD_LOCAL_RANK", "SLURM_LOCALID", 0);
}

std::string host_name() {
  char buf[256] = {0};
  if (::gethostname(buf, sizeof(buf) - 1) != 0) return "unknown";
  return buf;
}

CpuShare cpu_share() {
  CpuShare share;
  cpu_set_t mine, parent;
  if (sched_getaffinity(0, sizeof(mine), &mine) != 0) return share;
  share.allowed = CPU_COUNT(&mine);
  // Bound: the launcher (mpirun, orted, slurmstepd: our parent; wrappers must exec, as
  // launch/bind_local_rank.sh does) gave this rank fewer CPUs than it has itself. A cpuset that
  // holds the whole job (a container, a SLURM cgroup) is not a binding: parent and rank share it,
  // and the local ranks divide it. When the parent's set cannot be read, fewer CPUs than the
  // machine has online counts as bound.
  if (sched_getaffinity(::getppid(), sizeof(parent), &parent) == 0) {
    share.bound = share.allowed < CPU_COUNT(&parent);
  } else {
    const long online = sysconf(_SC_NPROCESSORS_ONLN);
    share.bound = online > 0 && share.allowed < online;
  }
  return share;
}

int configure_process(int threads, int local_ranks) {
  mallopt(M_MMAP_THRESHOLD, 32 << 20);  // the largest glibc accepts; bigger blocks are mmap'd
  mallopt(M_TRIM_THRESHOLD, 1 << 30);
  if (threads <= 0) {
    const CpuShare share = cpu_share();
    threads = std::max(1, share.bound ? share.allowed : share.allowed / std::max(1, local_ranks));
  }
  torch::set_num_threads(threads);
  set_blas_threads(threads);  // OpenBLAS keeps its own pool, sized to all cores by default
  // Softmax over peaked attention produces denormals, which are ~50x slower on x86.
  at::globalContext().setFlushDenormal(true);
  return threads;
}

std::string host_address() {
  const std::string host = host_name();
  addrinfo hints{};
  hints.ai_family = AF_INET;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  const int rc = ::getaddrinfo(host.c_str(), nullptr, &hints, &found);
  if (rc != 0) throw ConfigError("host name " + host + " does not resolve: " + ::gai_strerror(rc));
  std::string address, loopback;
  for (addrinfo* a = found; a && address.empty(); a = a->ai_next) {
    char buf[INET_ADDRSTRLEN] = {0};
    const auto* in = reinterpret_cast<const sockaddr_in*>(a->ai_addr);
    ::inet_ntop(AF_INET, &in->sin_addr, buf, sizeof(buf));
    (std::string(buf).rfind("127.", 0) == 0 ? loopback : address) = buf;
  }
  ::freeaddrinfo(found);
  if (address.empty())
    throw ConfigError("host name " + host + " resolves only to the loopback address " + loopback +
                      "; give this host's address instead");
  return address;
}

}  // namespace excel
