// Tests: PNG files written with libpng itself, of any colour type and bit depth, so the readers
// meet PNGs as other encoders write them.
#pragma once
#include <gtest/gtest.h>
#include <png.h>

#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include "excel/common/errors.h"
#include "excel/data/image_io.h"

namespace excel::test {

struct PngSpec {
  int h = 0, w = 0, depth = 8, colour_type = PNG_COLOR_TYPE_GRAY;
  bool interlaced = false;
  std::vector<png_color> palette;    // PLTE (colour type 3)
  std::vector<png_byte> trns_alpha;  // tRNS of a palette image
  bool trns_colour = false;          // tRNS of a grey or RGB image: the sample value 0 (or (0,0,0)) transparent
};

// `samples`: h x w x channels values, one per sample, row-major (indices for a palette image).
inline void write_png_with_libpng(const std::string& path, const PngSpec& s, const std::vector<uint16_t>& samples) {
  FILE* f = std::fopen(path.c_str(), "wb");
  ASSERT_NE(f, nullptr) << path;
  png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, nullptr, nullptr, nullptr);
  png_infop info = png_create_info_struct(png);
  if (setjmp(png_jmpbuf(png))) {
    std::fclose(f);
    FAIL() << "libpng could not write " << path;
  }
  png_init_io(png, f);
  png_set_IHDR(png, info, static_cast<png_uint_32>(s.w), static_cast<png_uint_32>(s.h), s.depth, s.colour_type,
               s.interlaced ? PNG_INTERLACE_ADAM7 : PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT,
               PNG_FILTER_TYPE_DEFAULT);
  if (!s.palette.empty()) png_set_PLTE(png, info, s.palette.data(), static_cast<int>(s.palette.size()));
  png_color_16 zero{};
  if (!s.trns_alpha.empty())
    png_set_tRNS(png, info, s.trns_alpha.data(), static_cast<int>(s.trns_alpha.size()), nullptr);
  else if (s.trns_colour)
    png_set_tRNS(png, info, nullptr, 0, &zero);
  png_write_info(png, info);
  if (s.depth < 8) png_set_packing(png);  // one sample a byte in, packed in the file
  const int channels = png_get_channels(png, info);
  const size_t bytes = s.depth == 16 ? 2 : 1, row = static_cast<size_t>(s.w * channels) * bytes;
  std::vector<png_byte> data(row * static_cast<size_t>(s.h));
  for (size_t i = 0; i < samples.size(); ++i) {  // 16-bit samples big-endian, as PNG stores them
    if (bytes == 2) {
      data[2 * i] = static_cast<png_byte>(samples[i] >> 8);
      data[2 * i + 1] = static_cast<png_byte>(samples[i]);
    } else {
      data[i] = static_cast<png_byte>(samples[i]);
    }
  }
  std::vector<png_bytep> rows(static_cast<size_t>(s.h));
  for (int y = 0; y < s.h; ++y) rows[static_cast<size_t>(y)] = data.data() + row * static_cast<size_t>(y);
  if (s.interlaced) png_set_interlace_handling(png);
  png_write_image(png, rows.data());
  png_write_end(png, info);
  png_destroy_write_struct(&png, &info);
  std::fclose(f);
}

// The message of the InputError read_label_png throws ("" when it throws none).
inline std::string label_error(const std::string& path) {
  try {
    data::read_label_png(path);
  } catch (const InputError& e) {
    return e.what();
  }
  return "";
}

}  // namespace excel::test
