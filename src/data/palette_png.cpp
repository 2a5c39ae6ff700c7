#include "excel/data/palette_png.h"

#include <zlib.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>

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

uint32_t get_u32(const uint8_t* p) {
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | uint32_t{p[3]};
}

int paeth(int a, int b, int c) {
  const int p = a + b - c, pa = std::abs(p - a), pb = std::abs(p - b), pc = std::abs(p - c);
  return pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
}

}  // namespace

bool read_indexed_png(const std::string& path, IndexedImage& out) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw InputError(path + ": cannot open");
  std::vector<uint8_t> b((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  static const uint8_t sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
  if (b.size() < 33 || !std::equal(sig, sig + 8, b.begin())) return false;
  if (std::string(b.begin() + 12, b.begin() + 16) != "IHDR") throw InputError(path + ": corrupt PNG (no IHDR)");
  const int64_t w = get_u32(&b[16]), h = get_u32(&b[20]);
  const uint8_t depth = b[24], ctype = b[25], interlace = b[28];
  if (ctype != 3 || depth != 8) return false;
  if (interlace != 0) throw InputError(path + ": interlaced palette PNGs are not supported");
  if (w <= 0 || h <= 0 || w > (1 << 20) || h > (1 << 20)) throw InputError(path + ": corrupt PNG (bad size)");
  std::vector<uint8_t> z;
  for (size_t off = 8; off + 12 <= b.size();) {
    const size_t len = get_u32(&b[off]);
    if (off + 12 + len > b.size()) throw InputError(path + ": corrupt PNG (truncated chunk)");
    const std::string type(b.begin() + static_cast<long>(off) + 4, b.begin() + static_cast<long>(off) + 8);
    if (type == "IDAT")
      z.insert(z.end(), b.begin() + static_cast<long>(off) + 8, b.begin() + static_cast<long>(off + 8 + len));
    if (type == "IEND") break;
    off += 12 + len;
  }
  const size_t stride = static_cast<size_t>(w) + 1;
  std::vector<uint8_t> raw(stride * static_cast<size_t>(h));
  uLongf rlen = static_cast<uLongf>(raw.size());
  if (uncompress(raw.data(), &rlen, z.data(), static_cast<uLong>(z.size())) != Z_OK || rlen != raw.size())
    throw InputError(path + ": corrupt PNG (image data does not inflate to " + std::to_string(w) + "x" +
                     std::to_string(h) + ")");
  out.h = h;
  out.w = w;
  out.indices.assign(static_cast<size_t>(w * h), 0);
  std::vector<uint8_t> prev(static_cast<size_t>(w), 0);
  for (int64_t y = 0; y < h; ++y) {
    const uint8_t f = raw[static_cast<size_t>(y) * stride];
    const uint8_t* src = &raw[static_cast<size_t>(y) * stride + 1];
    uint8_t* dst = &out.indices[static_cast<size_t>(y * w)];
    for (int64_t x = 0; x < w; ++x) {  // 1 byte per pixel: the left neighbour is x - 1
      const int a = x > 0 ? dst[x - 1] : 0, up = prev[static_cast<size_t>(x)],
                c = x > 0 ? prev[static_cast<size_t>(x - 1)] : 0;
      int pred = 0;
      switch (f) {
        case 0:
          pred = 0;
          break;
        case 1:
          pred = a;
          break;
        case 2:
          pred = up;
          break;
        case 3:
          pred = (a + up) / 2;
          break;
        case 4:
          pred = paeth(a, up, c);
          break;
        default:
          throw InputError(path + ": corrupt PNG (filter type " + std::to_string(f) + ")");
      }
      dst[x] = static_cast<uint8_t>(src[x] + pred);
    }
    std::copy(dst, dst + w, prev.begin());
  }
  return true;
}

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
