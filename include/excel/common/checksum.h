// CRC32 (zlib's) of files, and the checksum block our HDF5 files carry in front of their data.
#pragma once
#include <cstdint>
#include <string>

namespace excel {

// CRC32 of the bytes of `path` from `offset` to its end; InputError naming the file when unreadable.
uint32_t file_crc32(const std::string& path, uint64_t offset = 0);
std::string crc32_hex(uint32_t crc);  // 8 lower-case hex digits

// Every HDF5 file we write reserves an HDF5 user block of this size (HDF5 then starts at this
// offset); once the file is closed, its first bytes receive a header: magic, format version, the
// length and the CRC32 of everything after the block.
inline constexpr uint64_t kChecksumBlockBytes = 512;

// Writes the header into the user block of the closed file `path`.
void write_checksum_block(const std::string& path);

// Whether `path` begins with our header (false for a file starting with the HDF5 signature or
// shorter than the block).
bool has_checksum_block(const std::string& path);

// Checks the header against the file: FormatError naming the file on a wrong length or CRC
// ("checksum mismatch (truncated or corrupt)") or when the header is absent or damaged.
void verify_checksum_block(const std::string& path);

}  // namespace excel
