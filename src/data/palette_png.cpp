#include "excel/data/palette_png.h"

#include <zlib.h>

#include <algorithm>
#include <filesystem>

#include "excel/common/atomic_file.h"
#include "excel/common/errors.h"

namespace excel::data {
namespace {

void put_u32(std::vector<uint8_t>& out, uint32_t v) {
  for (int s = 24; s >= 0; s -= 8) out.push_back(static_cast<uint8_t>(v >> s));
}

void put_chunk(std::vector<uint8_t>& out, const char type[4], const std::vector<uint8_t>& data) {
  put_u32(out, static_cast<uint32_t>(data.size()));
  const size_t start = out.size();
  out.insert(out.end(), type, type + 4);
  out.insert(out.end(), data.begin(), data.end());
  const uLong crc = crc32(0L, out.data() + start, static_cast<uInt>(out.size() - start));
  put_u32(out, static_cast<uint32_t>(crc));
}

}  // namespace

std::vector<std::array<uint8_t, 3>> voc_palette() {
  std::vector<std::array<uint8_t, 3>> pal(256);
  for (int i = 0; i < 256; ++i) {
    int c = i, r = 0, g = 0, b = 0;
    for (int j = 0; j < 8; ++j) {  // bit j of the index goes to bit 7 - j of each channel
      r |= ((c >> 0) & 1) << (7 - j);
      g |= ((c >> 1) & 1) << (7 - j);
      b |= ((c >> 2) & 1) << (7 - j);
      c >>= 3;
    }
    pal[static_cast<size_t>(i)] = {static_cast<uint8_t>(r), static_cast<uint8_t>(g), static_cast<uint8_t>(b)};
  }
  return pal;
}

void write_palette_png(const std::string& path, const uint8_t* indices, int64_t h, int64_t w,
                       const std::vector<std::array<uint8_t, 3>>& palette) {
  if (h <= 0 || w <= 0 || !indices) throw InputError(path + ": empty mask");
  if (palette.empty() || palette.size() > 256) throw InputError(path + ": palette must have 1..256 entries");
  std::vector<uint8_t> png = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
  std::vector<uint8_t> ihdr;
  put_u32(ihdr, static_cast<uint32_t>(w));
  put_u32(ihdr, static_cast<uint32_t>(h));
  ihdr.insert(ihdr.end(), {8, 3, 0, 0, 0});  // 8-bit, indexed colour, deflate, no filter, no interlace
  put_chunk(png, "IHDR", ihdr);
  std::vector<uint8_t> plte;
  for (const auto& c : palette) plte.insert(plte.end(), c.begin(), c.end());
  put_chunk(png, "PLTE", plte);
  std::vector<uint8_t> raw(static_cast<size_t>(h * (w + 1)));
  for (int64_t y = 0; y < h; ++y) {
    raw[static_cast<size_t>(y * (w + 1))] = 0;  // filter type None
    std::copy(indices + y * w, indices + (y + 1) * w, raw.begin() + y * (w + 1) + 1);
  }
  uLongf zlen = compressBound(static_cast<uLong>(raw.size()));
  std::vector<uint8_t> z(zlen);
  if (compress2(z.data(), &zlen, raw.data(), static_cast<uLong>(raw.size()), 6) != Z_OK)
    throw InputError(path + ": zlib compression failed");
  z.resize(zlen);
  put_chunk(png, "IDAT", z);
  put_chunk(png, "IEND", {});

  std::filesystem::path p(path);
  if (p.has_parent_path()) std::filesystem::create_directories(p.parent_path());
  atomic_write(path, std::string(png.begin(), png.end()));
}

}  // namespace excel::data
