#include "excel/data/palette_png.h"

#include <png.h>
#include <zlib.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
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

struct PngSource {
  const uint8_t* data = nullptr;
  size_t size = 0, pos = 0;
  char message[256] = {0};
};

[[noreturn]] void png_fail(png_structp png, png_const_charp msg) {
  auto* src = static_cast<PngSource*>(png_get_error_ptr(png));
  std::snprintf(src->message, sizeof src->message, "%s", msg);
  png_longjmp(png, 1);
}

// libpng's warnings are benign by construction (e.g. "iCCP: known incorrect sRGB profile", common
// in real files); every CRC error is made an error below, so none is lost here.
void png_ignore_warning(png_structp, png_const_charp) {}

void png_read_bytes(png_structp png, png_bytep out, png_size_t n) {
  auto* src = static_cast<PngSource*>(png_get_io_ptr(png));
  if (n > src->size - src->pos) png_error(png, "the file ends early (truncated)");
  std::memcpy(out, src->data + src->pos, n);
  src->pos += n;
}

// The whole PNG through libpng: the signature, every chunk's CRC (critical and ancillary alike,
// as Pillow refuses either), the image data inflated to its end, the chunks up to IEND. Palette
// images of any bit depth keep their indices, one byte per pixel. Only trivially destructible
// locals live in this frame, so the longjmp out of libpng is safe. False with src.message set
// when libpng refuses the file.
bool decode_png(PngSource& src, bool& indexed, int64_t& h, int64_t& w, std::vector<uint8_t>& pixels,
                std::vector<png_bytep>& rows) {
  png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &src, png_fail, png_ignore_warning);
  if (!png) {
    std::snprintf(src.message, sizeof src.message, "%s", "libpng cannot start");
    return false;
  }
  png_infop info = png_create_info_struct(png);
  if (setjmp(png_jmpbuf(png))) {
    png_destroy_read_struct(&png, &info, nullptr);
    return false;
  }
  if (!info) png_error(png, "libpng cannot start");
  png_set_crc_action(png, PNG_CRC_ERROR_QUIT, PNG_CRC_ERROR_QUIT);
  png_set_read_fn(png, &src, png_read_bytes);
  png_read_info(png, info);
  indexed = png_get_color_type(png, info) == PNG_COLOR_TYPE_PALETTE;
  if (indexed && png_get_bit_depth(png, info) < 8) png_set_packing(png);  // 1/2/4-bit: one index a byte
  png_set_interlace_handling(png);
  png_read_update_info(png, info);
  h = png_get_image_height(png, info);
  w = png_get_image_width(png, info);
  const size_t row_bytes = png_get_rowbytes(png, info);
  if (h * w > kMaxImagePixels) png_error(png, "image too large (more pixels than kMaxImagePixels)");
  pixels.resize(row_bytes * static_cast<size_t>(h));
  rows.resize(static_cast<size_t>(h));
  for (int64_t y = 0; y < h; ++y) rows[static_cast<size_t>(y)] = pixels.data() + row_bytes * static_cast<size_t>(y);
  png_read_image(png, rows.data());
  png_read_end(png, info);
  png_destroy_read_struct(&png, &info, nullptr);
  return true;
}

// Reads and checks a whole PNG held in `bytes`; fills `out` when it is a palette image.
bool read_png(const std::string& path, const std::string& bytes, IndexedImage* out) {
  PngSource src;
  src.data = reinterpret_cast<const uint8_t*>(bytes.data());
  src.size = bytes.size();
  bool indexed = false;
  int64_t h = 0, w = 0;
  std::vector<uint8_t> pixels;
  std::vector<png_bytep> rows;
  if (!decode_png(src, indexed, h, w, pixels, rows)) throw InputError(path + ": corrupt PNG: " + src.message);
  if (!indexed || !out) return indexed;
  out->h = h;
  out->w = w;
  out->indices = std::move(pixels);  // one byte per pixel: the row stride is the width
  return true;
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw InputError(path + ": cannot open");
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

}  // namespace

bool is_png(const std::string& bytes) {
  return bytes.size() >= 8 && png_sig_cmp(reinterpret_cast<png_const_bytep>(bytes.data()), 0, 8) == 0;
}

void check_png(const std::string& path, const std::string& bytes) {
  read_png(path, bytes, nullptr);
}

bool read_indexed_png(const std::string& path, IndexedImage& out) {
  const std::string bytes = read_file(path);
  if (!is_png(bytes)) return false;
  return read_png(path, bytes, &out);
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
