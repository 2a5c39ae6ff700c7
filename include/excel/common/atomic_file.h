// Crash-safe file replacement: a reader of `path` sees the old file or the complete new one, never
// part of one, even after a power loss. Every writer of a result file goes through here.
#pragma once
#include <functional>
#include <string>

namespace excel {

// Where atomic_replace writes before the rename: path + ".tmp".
std::string temp_path_for(const std::string& path);

// Calls write(tmp) to fill the temporary file, flushes it to disk (fsync), renames it over `path`
// and flushes the directory. If `write` throws, the temporary is removed, `path` is untouched and
// the exception goes on. Errors name the file (InputError).
void atomic_replace(const std::string& path, const std::function<void(const std::string& tmp)>& write);

// atomic_replace with `bytes` as the whole content.
void atomic_write(const std::string& path, const std::string& bytes);

// fsync of a file or a directory (opened read-only); InputError naming the path on failure.
void sync_to_disk(const std::string& path);

}  // namespace excel
