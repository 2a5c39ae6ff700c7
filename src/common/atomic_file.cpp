#include "excel/common/atomic_file.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "excel/common/errors.h"

namespace fs = std::filesystem;

namespace excel {

std::string temp_path_for(const std::string& path) {
  return path + ".tmp";
}

void sync_to_disk(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw InputError(path + ": cannot open to flush: " + std::strerror(errno));
  const int rc = ::fsync(fd);
  const int err = errno;
  ::close(fd);
  // Some file systems refuse fsync on directories (EINVAL); the rename itself is still atomic.
  if (rc != 0 && !(err == EINVAL && fs::is_directory(path)))
    throw InputError(path + ": cannot flush to disk: " + std::strerror(err));
}

void atomic_replace(const std::string& path, const std::function<void(const std::string& tmp)>& write) {
  const std::string tmp = temp_path_for(path);
  const fs::path parent = fs::path(path).has_parent_path() ? fs::path(path).parent_path() : fs::path(".");
  try {
    write(tmp);
    sync_to_disk(tmp);
    std::error_code ec;
    fs::rename(tmp, path, ec);
    if (ec) throw InputError(tmp + ": cannot rename to " + path + ": " + ec.message());
  } catch (...) {
    std::error_code ignored;
    fs::remove(tmp, ignored);
    throw;
  }
  sync_to_disk(parent.string());
}

void atomic_write(const std::string& path, const std::string& bytes) {
  atomic_replace(path, [&](const std::string& tmp) {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    out.close();
    if (!out) throw InputError(tmp + ": cannot write");
  });
}

}  // namespace excel
