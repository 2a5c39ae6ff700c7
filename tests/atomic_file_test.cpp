// common/atomic_file (src/common/atomic_file.cpp): a reader sees the old file or the complete new
// one, never a part.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <stdexcept>

#include "excel/common/atomic_file.h"
#include "excel/common/errors.h"
#include "test_util.h"

using namespace excel;
namespace fs = std::filesystem;

namespace {
std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}
}  // namespace

TEST(AtomicFileTest, writes_and_replaces_leaving_no_temporary) {
  const std::string dir = test::temp_dir("atomic"), path = dir + "/a.txt";
  atomic_write(path, "first");
  EXPECT_EQ(slurp(path), "first");
  atomic_write(path, "second, longer");
  EXPECT_EQ(slurp(path), "second, longer");
  EXPECT_FALSE(fs::exists(temp_path_for(path)));
  fs::remove_all(dir);
}

TEST(AtomicFileTest, a_failing_writer_leaves_the_old_file_and_no_temporary) {
  const std::string dir = test::temp_dir("atomic_fail"), path = dir + "/a.txt";
  atomic_write(path, "good");
  EXPECT_THROW(atomic_replace(path,
                              [](const std::string& tmp) {
                                std::ofstream(tmp) << "half";
                                throw std::runtime_error("writer failed");
                              }),
               std::runtime_error);
  EXPECT_EQ(slurp(path), "good");
  EXPECT_FALSE(fs::exists(temp_path_for(path)));
  fs::remove_all(dir);
}

TEST(AtomicFileTest, an_unwritable_place_is_named) {
  try {
    atomic_write("/nonexistent_dir_for_excel_test/x.txt", "x");
    FAIL() << "no error";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("/nonexistent_dir_for_excel_test/x.txt"), std::string::npos) << e.what();
  }
}

// A writer killed (SIGKILL) at random moments, 30 times: the file is always one complete version.
TEST(AtomicFileTest, killed_writers_never_leave_a_partial_file) {
  const std::string dir = test::temp_dir("atomic_kill"), path = dir + "/big.bin";
  auto content = [](int v) { return std::string(4 << 20, static_cast<char>('a' + v % 26)); };
  atomic_write(path, content(0));
  std::mt19937 rng(5);
  int killed_mid_write = 0;
  for (int round = 1; round <= 30; ++round) {
    const pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      for (int v = round * 1000;; ++v) atomic_write(path, content(v));
    }
    usleep(std::uniform_int_distribution<int>(1000, 40000)(rng));
    kill(pid, SIGKILL);
    int status = 0;
    waitpid(pid, &status, 0);
    if (fs::exists(temp_path_for(path))) ++killed_mid_write;
    const std::string s = slurp(path);
    ASSERT_EQ(s.size(), size_t{4 << 20}) << "round " << round;
    EXPECT_EQ(s.find_first_not_of(s[0]), std::string::npos) << "round " << round << ": mixed content";
  }
  std::cout << "[atomic] 30 kills, " << killed_mid_write << " of them with a temporary file left behind\n";
  EXPECT_GT(killed_mid_write, 0) << "no kill landed during a write: the test did not test anything";
  fs::remove_all(dir);
}
