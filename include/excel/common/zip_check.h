// A structural check of zip archives (torch.save and TorchScript files are zip archives) before a
// library trusts them: LibTorch's reader checks no entry's CRC, so damaged tensor data would load.
#pragma once
#include <string>

namespace excel {

// Checks the end-of-central-directory record (zip64 too), every central directory entry, its local
// header, that its data lies inside the file, and its CRC32 (stored and deflated entries).
// FormatError naming `path` and the entry on the first problem.
void check_zip_archive(const std::string& path);

}  // namespace excel
