// Indexed (palette) PNGs as the PASCAL VOC masks and its evaluation server use: one byte per
// pixel, the class index, with the VOC colour map as the PLTE chunk.
#pragma once
#include <array>
#include <cstdint>
#include <string>
#include <vector>

namespace excel::data {

// The largest image any reader decodes (twice Pillow's decompression-bomb warning limit): a
// header asking for more is refused before any allocation.
inline constexpr int64_t kMaxImagePixels = 2 * 89478485;

// The PASCAL VOC colour map: 256 RGB entries (class 0 black, 255 = (224, 224, 192)).
std::vector<std::array<uint8_t, 3>> voc_palette();

// Writes an 8-bit indexed PNG of h x w indices (row-major) with the given palette (<= 256
// entries), to a temporary name renamed into place. Throws InputError naming the file.
void write_palette_png(const std::string& path, const uint8_t* indices, int64_t h, int64_t w,
                       const std::vector<std::array<uint8_t, 3>>& palette = voc_palette());

struct IndexedImage {
  int64_t h = 0, w = 0;
  std::vector<uint8_t> indices;  // h x w, row-major
};

// Reads a PNG through libpng, checking the whole file: every chunk's CRC, the image data to its
// end, up to IEND. For an indexed PNG (colour type 3) of any bit depth (1, 2, 4, 8), interlaced
// or not, `out` receives the palette indices (not colours, as OpenCV would give) and it returns
// true, as VOC's SegmentationClass masks are stored. Returns false, leaving `out` alone, for a
// sound PNG of any other colour type and for a file that is no PNG at all. Throws InputError
// naming the file and libpng's complaint ("IDAT: CRC error", "the file ends early (truncated)",
// ...) when it is a corrupt PNG.
bool read_indexed_png(const std::string& path, IndexedImage& out);

// Whether `bytes` start with the PNG signature.
bool is_png(const std::string& bytes);
// The same whole-file check for PNG data already read (any colour type); throws InputError
// naming `path` when libpng refuses it.
void check_png(const std::string& path, const std::string& bytes);

}  // namespace excel::data
