#include "excel/common/zip_check.h"

#include <zlib.h>

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <vector>

#include "excel/common/errors.h"

namespace excel {
namespace {

uint64_t le(const uint8_t* p, int bytes) {
  uint64_t v = 0;
  for (int i = 0; i < bytes; ++i) v |= uint64_t{p[i]} << (8 * i);
  return v;
}

class Reader {
 public:
  explicit Reader(const std::string& path) : path_(path), in_(path, std::ios::binary) {
    if (!in_) throw InputError(path + ": cannot open");
    size_ = std::filesystem::file_size(path);
  }
  uint64_t size() const { return size_; }
  // `n` bytes at `offset`; FormatError when they are not all inside the file.
  std::vector<uint8_t> at(uint64_t offset, uint64_t n, const std::string& what) {
    if (offset > size_ || n > size_ - offset) fail(what + " lies outside the file (truncated?)");
    std::vector<uint8_t> b(n);
    in_.seekg(static_cast<std::streamoff>(offset));
    in_.read(reinterpret_cast<char*>(b.data()), static_cast<std::streamsize>(n));
    if (!in_) fail("cannot read " + what);
    return b;
  }
  // CRC32 of an entry's data: `method` 0 (stored) or 8 (deflate) of `csize` bytes expanding to `usize`.
  uint32_t crc(uint64_t offset, uint64_t csize, uint64_t usize, int method, const std::string& name);
  [[noreturn]] void fail(const std::string& what) const { throw FormatError(path_ + ": corrupt zip archive: " + what); }

 private:
  std::string path_;
  std::ifstream in_;
  uint64_t size_ = 0;
};

uint32_t Reader::crc(uint64_t offset, uint64_t csize, uint64_t usize, int method, const std::string& name) {
  if (offset > size_ || csize > size_ - offset) fail("entry '" + name + "' data lies outside the file (truncated?)");
  if (method == 0 && csize != usize) fail("stored entry '" + name + "' has differing sizes");
  uLong crc = crc32(0L, Z_NULL, 0);
  z_stream z{};
  if (method == 8 && inflateInit2(&z, -MAX_WBITS) != Z_OK) fail("zlib cannot start");
  std::vector<uint8_t> buf(1 << 20), out(method == 8 ? 1 << 20 : 0);
  uint64_t left = csize, produced = 0;
  in_.seekg(static_cast<std::streamoff>(offset));
  int zrc = Z_OK;
  while (left > 0 || (method == 8 && zrc != Z_STREAM_END)) {
    const uint64_t n = std::min<uint64_t>(left, buf.size());
    in_.read(reinterpret_cast<char*>(buf.data()), static_cast<std::streamsize>(n));
    if (!in_) fail("cannot read entry '" + name + "'");
    left -= n;
    if (method == 0) {
      crc = crc32(crc, buf.data(), static_cast<uInt>(n));
      continue;
    }
    z.next_in = buf.data();
    z.avail_in = static_cast<uInt>(n);
    do {
      z.next_out = out.data();
      z.avail_out = static_cast<uInt>(out.size());
      zrc = inflate(&z, Z_NO_FLUSH);
      if (zrc != Z_OK && zrc != Z_STREAM_END && !(zrc == Z_BUF_ERROR && left > 0)) {
        inflateEnd(&z);
        fail("entry '" + name + "' has broken deflate data");
      }
      const uint64_t got = out.size() - z.avail_out;
      produced += got;
      if (produced > usize) {
        inflateEnd(&z);
        fail("entry '" + name + "' expands beyond its stated size");
      }
      crc = crc32(crc, out.data(), static_cast<uInt>(got));
    } while (z.avail_out == 0 && zrc != Z_STREAM_END);
    if (left == 0 && zrc != Z_STREAM_END) {
      inflateEnd(&z);
      fail("entry '" + name + "' ends inside its deflate data");
    }
  }
  if (method == 8) inflateEnd(&z);
  if (method == 8 && produced != usize) fail("entry '" + name + "' expands to other than its stated size");
  return static_cast<uint32_t>(crc);
}

}  // namespace

void check_zip_archive(const std::string& path) {
  Reader r(path);
  // End of central directory: the last "PK\5\6" within 22 + 65535 bytes of the end.
  const uint64_t tail = std::min<uint64_t>(r.size(), 22 + 65535);
  const std::vector<uint8_t> t = r.at(r.size() - tail, tail, "the end of the archive");
  int64_t eocd = -1;
  for (int64_t i = static_cast<int64_t>(tail) - 22; i >= 0 && eocd < 0; --i)
    if (le(&t[static_cast<size_t>(i)], 4) == 0x06054b50) eocd = i;
  if (eocd < 0) r.fail("no end-of-central-directory record (truncated?)");
  const uint8_t* e = &t[static_cast<size_t>(eocd)];
  const uint64_t eocd_at = r.size() - tail + static_cast<uint64_t>(eocd);
  uint64_t entries = le(e + 10, 2), cd_size = le(e + 12, 4), cd_at = le(e + 16, 4);
  if (entries == 0xFFFF || cd_size == 0xFFFFFFFF || cd_at == 0xFFFFFFFF) {  // zip64
    if (eocd_at < 20) r.fail("zip64 locator missing");
    const std::vector<uint8_t> loc = r.at(eocd_at - 20, 20, "the zip64 locator");
    if (le(loc.data(), 4) != 0x07064b50) r.fail("zip64 locator missing");
    const std::vector<uint8_t> z = r.at(le(&loc[8], 8), 56, "the zip64 end record");
    if (le(z.data(), 4) != 0x06064b50) r.fail("zip64 end record missing");
    entries = le(&z[32], 8);
    cd_size = le(&z[40], 8);
    cd_at = le(&z[48], 8);
  }
  if (entries == 0) r.fail("no entries");
  if (entries > cd_size / 46) r.fail(std::to_string(entries) + " entries cannot fit the central directory");
  const std::vector<uint8_t> cd = r.at(cd_at, cd_size, "the central directory");
  uint64_t p = 0;
  for (uint64_t i = 0; i < entries; ++i) {
    if (p + 46 > cd.size() || le(&cd[p], 4) != 0x02014b50) r.fail("central directory entry " + std::to_string(i));
    const uint8_t* c = &cd[p];
    const int method = static_cast<int>(le(c + 10, 2));
    const uint32_t want = static_cast<uint32_t>(le(c + 16, 4));
    uint64_t csize = le(c + 20, 4), usize = le(c + 24, 4), local = le(c + 42, 4);
    const uint64_t n = le(c + 28, 2), x = le(c + 30, 2), k = le(c + 32, 2);
    if (p + 46 + n + x + k > cd.size()) r.fail("central directory entry " + std::to_string(i) + " overruns it");
    std::string name(reinterpret_cast<const char*>(c + 46), std::min<uint64_t>(n, 120));  // for messages
    for (char& ch : name)
      if (static_cast<unsigned char>(ch) < 0x20 || static_cast<unsigned char>(ch) >= 0x7f) ch = '?';
    // zip64 extra field: the 64-bit values of the fields set to 0xFFFFFFFF, in this order.
    for (uint64_t q = 0; q + 4 <= x;) {
      const uint8_t* f = c + 46 + n + q;
      const uint64_t id = le(f, 2), len = le(f + 2, 2);
      if (q + 4 + len > x) r.fail("entry '" + name + "' has a broken extra field");
      if (id == 1) {
        uint64_t o = 4;
        for (uint64_t* v : {&usize, &csize, &local}) {
          if (*v != 0xFFFFFFFF) continue;
          if (o + 8 > 4 + len) r.fail("entry '" + name + "' has a short zip64 field");
          *v = le(f + o, 8);
          o += 8;
        }
      }
      q += 4 + len;
    }
    if (method != 0 && method != 8) r.fail("entry '" + name + "' uses compression method " + std::to_string(method));
    const std::vector<uint8_t> h = r.at(local, 30, "the local header of '" + name + "'");
    if (le(h.data(), 4) != 0x04034b50) r.fail("entry '" + name + "' has no local header");
    const uint64_t hn = le(&h[26], 2), hx = le(&h[28], 2);
    if (r.at(local + 30, hn, "the name of '" + name + "'") != std::vector<uint8_t>(c + 46, c + 46 + n))
      r.fail("entry '" + name + "': local header names another file");
    if (r.crc(local + 30 + hn + hx, csize, usize, method, name) != want)
      r.fail("entry '" + name + "': CRC32 mismatch (corrupt data)");
    p += 46 + n + x + k;
  }
}

}  // namespace excel
