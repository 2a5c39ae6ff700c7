#include "excel/common/checksum.h"

#include <fcntl.h>
#include <unistd.h>
#include <zlib.h>

#include <array>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <vector>

#include "excel/common/errors.h"

namespace excel {
namespace {

// Header layout (little-endian): magic[16], version u32, reserved u32, payload length u64,
// payload CRC32 u32, CRC32 of the preceding 36 bytes u32; the rest of the block is zero.
constexpr char kMagic[16] = "EXCEL-HDF5-CRC\n";
constexpr uint32_t kVersion = 1;
constexpr size_t kHeaderBytes = 40;

void put(uint8_t* p, uint64_t v, int bytes) {
  for (int i = 0; i < bytes; ++i) p[i] = static_cast<uint8_t>(v >> (8 * i));
}
uint64_t get(const uint8_t* p, int bytes) {
  uint64_t v = 0;
  for (int i = 0; i < bytes; ++i) v |= uint64_t{p[i]} << (8 * i);
  return v;
}
uint32_t crc_of(const uint8_t* p, size_t n) {
  return static_cast<uint32_t>(crc32(crc32(0L, Z_NULL, 0), p, static_cast<uInt>(n)));
}

// The first kHeaderBytes of `path`, or false when it is shorter.
bool read_header(const std::string& path, std::array<uint8_t, kHeaderBytes>& h) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw InputError(path + ": cannot open");
  in.read(reinterpret_cast<char*>(h.data()), kHeaderBytes);
  return in.gcount() == static_cast<std::streamsize>(kHeaderBytes);
}

// Whether the rest of the block, after the header, is zero as written.
bool padding_is_zero(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::vector<char> pad(kChecksumBlockBytes - kHeaderBytes);
  in.seekg(kHeaderBytes);
  in.read(pad.data(), static_cast<std::streamsize>(pad.size()));
  if (in.gcount() != static_cast<std::streamsize>(pad.size())) return false;
  for (char c : pad)
    if (c != 0) return false;
  return true;
}

}  // namespace

uint32_t file_crc32(const std::string& path, uint64_t offset) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw InputError(path + ": cannot open");
  in.seekg(static_cast<std::streamoff>(offset));
  std::vector<char> buf(1 << 20);
  uLong crc = crc32(0L, Z_NULL, 0);
  while (in) {
    in.read(buf.data(), static_cast<std::streamsize>(buf.size()));
    crc = crc32(crc, reinterpret_cast<const Bytef*>(buf.data()), static_cast<uInt>(in.gcount()));
  }
  if (!in.eof()) throw InputError(path + ": read error while computing its checksum");
  return static_cast<uint32_t>(crc);
}

std::string crc32_hex(uint32_t crc) {
  char b[16];
  std::snprintf(b, sizeof(b), "%08x", crc);
  return b;
}

void write_checksum_block(const std::string& path) {
  const uint64_t size = std::filesystem::file_size(path);
  if (size < kChecksumBlockBytes) throw FormatError(path + ": shorter than its checksum block");
  std::array<uint8_t, kHeaderBytes> h{};
  std::memcpy(h.data(), kMagic, 16);
  put(&h[16], kVersion, 4);
  put(&h[24], size - kChecksumBlockBytes, 8);
  put(&h[32], file_crc32(path, kChecksumBlockBytes), 4);
  put(&h[36], crc_of(h.data(), 36), 4);
  const int fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0) throw InputError(path + ": cannot open to write its checksum: " + std::strerror(errno));
  const ssize_t n = ::pwrite(fd, h.data(), h.size(), 0);
  ::close(fd);
  if (n != static_cast<ssize_t>(h.size())) throw InputError(path + ": cannot write its checksum");
}

bool has_checksum_block(const std::string& path) {
  std::array<uint8_t, kHeaderBytes> h{};
  return read_header(path, h) && std::memcmp(h.data(), kMagic, 16) == 0;
}

void verify_checksum_block(const std::string& path) {
  std::array<uint8_t, kHeaderBytes> h{};
  if (!read_header(path, h) || std::memcmp(h.data(), kMagic, 16) != 0)
    throw FormatError(path + ": no ExCEL checksum block (truncated, corrupt, or written by an older build)");
  if (get(&h[36], 4) != crc_of(h.data(), 36) || !padding_is_zero(path))
    throw FormatError(path + ": checksum block is corrupt");
  if (get(&h[16], 4) != kVersion)
    throw FormatError(path + ": checksum block version " + std::to_string(get(&h[16], 4)) + ", this build reads " +
                      std::to_string(kVersion));
  const uint64_t size = std::filesystem::file_size(path), want = get(&h[24], 8);
  if (size < kChecksumBlockBytes || size - kChecksumBlockBytes != want)
    throw FormatError(path + ": " + std::to_string(size) + " bytes, its checksum block says " +
                      std::to_string(want + kChecksumBlockBytes) + " (truncated or extended)");
  const uint32_t crc = file_crc32(path, kChecksumBlockBytes);
  if (crc != get(&h[32], 4))
    throw FormatError(path + ": checksum mismatch (truncated or corrupt): CRC32 of the data " + crc32_hex(crc) +
                      ", its block says " + crc32_hex(static_cast<uint32_t>(get(&h[32], 4))));
}

}  // namespace excel
