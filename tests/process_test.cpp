// common/process (src/common/process.cpp): cpu_share(), which --threads=0 divides among a host's
// ranks. A thread pinned to one CPU is "bound" (fewer CPUs than this process's parent has); a
// process whose parent has the same smaller set (a container's or SLURM cgroup's cpuset around
// the whole job) is not, although it has fewer CPUs than the machine.
#include <gtest/gtest.h>
#include <sched.h>
#include <sys/wait.h>
#include <unistd.h>

#include <thread>

#include "excel/common/process.h"

using namespace excel;

namespace {
// The first CPU of `set`, alone.
cpu_set_t first_cpu_of(const cpu_set_t& set) {
  cpu_set_t one;
  CPU_ZERO(&one);
  for (int c = 0; c < CPU_SETSIZE; ++c)
    if (CPU_ISSET(c, &set)) {
      CPU_SET(c, &one);
      break;
    }
  return one;
}
}  // namespace

TEST(ProcessTest, cpu_share_counts_a_rank_bound_only_when_it_has_fewer_cpus_than_its_parent) {
  cpu_set_t parent;
  ASSERT_EQ(sched_getaffinity(::getppid(), sizeof(parent), &parent), 0);
  cpu_set_t mine;
  ASSERT_EQ(sched_getaffinity(0, sizeof(mine), &mine), 0);
  const CpuShare here = cpu_share();
  EXPECT_EQ(here.allowed, CPU_COUNT(&mine));
  EXPECT_EQ(here.bound, CPU_COUNT(&mine) < CPU_COUNT(&parent));
  if (CPU_COUNT(&parent) < 2) GTEST_SKIP() << "one CPU: a binding to fewer cannot be made";
  CpuShare pinned;
  std::thread t([&] {
    const cpu_set_t one = first_cpu_of(parent);
    if (sched_setaffinity(0, sizeof(one), &one) == 0) pinned = cpu_share();  // this thread only
  });
  t.join();
  EXPECT_EQ(pinned.allowed, 1);
  EXPECT_TRUE(pinned.bound);
}

TEST(ProcessTest, a_cpuset_shared_with_the_launcher_is_not_a_binding) {
  cpu_set_t all;
  ASSERT_EQ(sched_getaffinity(0, sizeof(all), &all), 0);
  if (CPU_COUNT(&all) < 2) GTEST_SKIP() << "one CPU: a smaller cpuset cannot be made";
  // A "launcher" restricted to one CPU starts a "rank", which inherits that CPU: 2 bytes back
  // through a pipe, the rank's allowed CPUs and whether it counts as bound.
  int fds[2];
  ASSERT_EQ(::pipe(fds), 0);
  const pid_t launcher = ::fork();
  ASSERT_GE(launcher, 0);
  if (launcher == 0) {
    const cpu_set_t one = first_cpu_of(all);
    if (sched_setaffinity(0, sizeof(one), &one) != 0) ::_exit(2);
    const pid_t rank = ::fork();
    if (rank == 0) {
      const CpuShare s = cpu_share();
      const char out[2] = {static_cast<char>(s.allowed), static_cast<char>(s.bound)};
      ::_exit(::write(fds[1], out, 2) == 2 ? 0 : 3);
    }
    int status = 0;
    ::waitpid(rank, &status, 0);
    ::_exit(WIFEXITED(status) ? WEXITSTATUS(status) : 4);
  }
  ::close(fds[1]);
  char got[2] = {0, 0};
  const ssize_t n = ::read(fds[0], got, 2);
  ::close(fds[0]);
  int status = 0;
  ::waitpid(launcher, &status, 0);
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "status " << status;
  ASSERT_EQ(n, 2);
  EXPECT_EQ(got[0], 1);  // the one CPU of the cpuset
  EXPECT_EQ(got[1], 0) << "a rank with its launcher's CPUs counted as bound";
}
