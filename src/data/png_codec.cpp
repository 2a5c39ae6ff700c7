#include <png.h>
#include <zlib.h>

#include <cstdio>
#include <cstring>

#include "excel/common/errors.h"
#include "excel/data/image_codecs.h"

namespace excel::data {
namespace {

struct PngIo {
  const uint8_t* data = nullptr;  // reading: the file's bytes
  size_t size = 0, pos = 0;
  std::string* out = nullptr;  // writing
  bool refused = false;        // a sound PNG of a colour type the caller does not take
  char message[256] = {0};
};

[[noreturn]] void png_fail(png_structp png, png_const_charp msg) {
  auto* io = static_cast<PngIo*>(png_get_error_ptr(png));
  std::snprintf(io->message, sizeof io->message, "%s", msg);
  png_longjmp(png, 1);
}

// libpng's warnings are benign by construction (e.g. "iCCP: known incorrect sRGB profile", common
// in real files); every CRC error is made an error below, so none is lost here.
void png_ignore_warning(png_structp, png_const_charp) {}

void png_read_bytes(png_structp png, png_bytep out, png_size_t n) {
  auto* io = static_cast<PngIo*>(png_get_io_ptr(png));
  if (n > io->size - io->pos) png_error(png, "the file ends early (truncated)");
  std::memcpy(out, io->data + io->pos, n);
  io->pos += n;
}

void png_write_bytes(png_structp png, png_bytep data, png_size_t n) {
  static_cast<PngIo*>(png_get_io_ptr(png))->out->append(reinterpret_cast<const char*>(data), n);
}

void png_flush_nothing(png_structp) {}

const char* colour_type_name(int t) {
  switch (t) {
    case PNG_COLOR_TYPE_RGB:
      return "RGB (3 channels)";
    case PNG_COLOR_TYPE_GRAY_ALPHA:
      return "grey with alpha (2 channels)";
    case PNG_COLOR_TYPE_RGB_ALPHA:
      return "RGBA (4 channels)";
    default:
      return "of an unknown colour type";
  }
}

// Sets the transformations `as` asks for. False (with io.message set) for a colour type kLabel
// refuses.
bool set_transforms(png_structp png, png_infop info, PngAs as, PngIo& io, bool& saturate16) {
  const int type = png_get_color_type(png, info), depth = png_get_bit_depth(png, info);
  const bool palette = type == PNG_COLOR_TYPE_PALETTE, grey = (type & PNG_COLOR_MASK_COLOR) == 0;
  if (as == PngAs::kLabel) {
    if (!palette && type != PNG_COLOR_TYPE_GRAY) {
      std::snprintf(io.message, sizeof io.message, "label image is %s; expected a single-channel class-index PNG",
                    colour_type_name(type));
      io.refused = true;
      return false;
    }
    if (palette && depth < 8) png_set_packing(png);  // 1/2/4-bit: one index a byte
    if (grey && depth < 8) png_set_expand_gray_1_2_4_to_8(png);
    saturate16 = grey && depth == 16;  // read big-endian, saturated below
    return true;
  }
  if (depth == 16) png_set_strip_16(png);  // the high byte
  png_set_strip_alpha(png);
  if (palette) png_set_palette_to_rgb(png);
  if (grey && depth < 8) png_set_expand_gray_1_2_4_to_8(png);
  if (grey) png_set_gray_to_rgb(png);
  return true;
}

// Only trivially destructible locals live in this frame, so the longjmp out of libpng is safe.
bool decode_into(PngIo& io, PngAs as, Pixels& out, std::vector<png_bytep>& rows, bool& saturate16) {
  png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &io, png_fail, png_ignore_warning);
  if (!png) {
    std::snprintf(io.message, sizeof io.message, "%s", "libpng cannot start");
    return false;
  }
  png_infop info = png_create_info_struct(png);
  if (setjmp(png_jmpbuf(png))) {
    png_destroy_read_struct(&png, &info, nullptr);
    return false;
  }
  if (!info) png_error(png, "libpng cannot start");
  png_set_crc_action(png, PNG_CRC_ERROR_QUIT, PNG_CRC_ERROR_QUIT);  // ancillary chunks too, as Pillow
  png_set_read_fn(png, &io, png_read_bytes);
  png_read_info(png, info);
  if (!set_transforms(png, info, as, io, saturate16)) {
    png_destroy_read_struct(&png, &info, nullptr);
    return false;
  }
  png_set_interlace_handling(png);
  png_read_update_info(png, info);
  out.h = png_get_image_height(png, info);
  out.w = png_get_image_width(png, info);
  out.channels = png_get_channels(png, info);
  const size_t row_bytes = png_get_rowbytes(png, info);
  if (out.h * out.w > kMaxImagePixels) png_error(png, "image too large (more pixels than kMaxImagePixels)");
  if (row_bytes != static_cast<size_t>(out.w * out.channels) * (saturate16 ? 2 : 1))
    png_error(png, "unexpected row size after the colour transformations");
  out.data.resize(row_bytes * static_cast<size_t>(out.h));
  rows.resize(static_cast<size_t>(out.h));
  for (int64_t y = 0; y < out.h; ++y)
    rows[static_cast<size_t>(y)] = out.data.data() + row_bytes * static_cast<size_t>(y);
  png_read_image(png, rows.data());
  png_read_end(png, info);
  png_destroy_read_struct(&png, &info, nullptr);
  return true;
}

bool encode_into(PngIo& io, const Pixels& image, std::vector<png_bytep>& rows) {
  png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, &io, png_fail, png_ignore_warning);
  if (!png) {
    std::snprintf(io.message, sizeof io.message, "%s", "libpng cannot start");
    return false;
  }
  png_infop info = png_create_info_struct(png);
  if (setjmp(png_jmpbuf(png))) {
    png_destroy_write_struct(&png, &info);
    return false;
  }
  if (!info) png_error(png, "libpng cannot start");
  png_set_write_fn(png, &io, png_write_bytes, png_flush_nothing);
  png_set_filter(png, PNG_FILTER_TYPE_BASE, PNG_FILTER_SUB);
  png_set_compression_level(png, Z_BEST_SPEED);
  png_set_compression_strategy(png, Z_RLE);
  const int type = image.channels == 1   ? PNG_COLOR_TYPE_GRAY
                   : image.channels == 3 ? PNG_COLOR_TYPE_RGB
                                         : PNG_COLOR_TYPE_RGB_ALPHA;
  png_set_IHDR(png, info, static_cast<png_uint_32>(image.w), static_cast<png_uint_32>(image.h), 8, type,
               PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
  png_write_info(png, info);
  png_write_image(png, rows.data());
  png_write_end(png, info);
  png_destroy_write_struct(&png, &info);
  return true;
}

}  // namespace

bool is_png(const std::string& bytes) {
  return bytes.size() >= 8 && png_sig_cmp(reinterpret_cast<png_const_bytep>(bytes.data()), 0, 8) == 0;
}

Pixels decode_png(const std::string& path, const std::string& bytes, PngAs as) {
  if (!is_png(bytes)) throw InputError(path + ": not a PNG file (no PNG signature)");
  PngIo io;
  io.data = reinterpret_cast<const uint8_t*>(bytes.data());
  io.size = bytes.size();
  Pixels out;
  std::vector<png_bytep> rows;
  bool saturate16 = false;
  if (!decode_into(io, as, out, rows, saturate16)) {
    throw InputError(path + (io.refused ? ": " : ": corrupt PNG: ") + io.message);
  }
  if (saturate16) {  // 16-bit grey labels: big-endian samples, saturated to 8 bits
    const size_t n = static_cast<size_t>(out.h * out.w);
    for (size_t i = 0; i < n; ++i) {
      const unsigned v = unsigned{out.data[2 * i]} << 8 | out.data[2 * i + 1];
      out.data[i] = static_cast<uint8_t>(v > 255 ? 255 : v);
    }
    out.data.resize(n);
  }
  return out;
}

std::string encode_png(const std::string& path, const Pixels& image) {
  if (image.channels != 1 && image.channels != 3 && image.channels != 4)
    throw InputError(path + ": a PNG is written from grey, RGB or RGBA pixels, not " + std::to_string(image.channels) +
                     " channels");
  if (image.h <= 0 || image.w <= 0 || image.h > PNG_UINT_31_MAX || image.w > PNG_UINT_31_MAX)
    throw InputError(path + ": cannot write a " + std::to_string(image.w) + " x " + std::to_string(image.h) + " PNG");
  std::string out;
  PngIo io;
  io.out = &out;
  std::vector<png_bytep> rows(static_cast<size_t>(image.h));
  const size_t stride = static_cast<size_t>(image.w * image.channels);
  for (size_t y = 0; y < rows.size(); ++y) rows[y] = const_cast<png_bytep>(image.data.data() + stride * y);
  if (!encode_into(io, image, rows)) throw InputError(path + ": cannot encode PNG: " + io.message);
  return out;
}

}  // namespace excel::data
