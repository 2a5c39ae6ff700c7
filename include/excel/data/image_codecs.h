// JPEG and PNG files through libjpeg-turbo and libpng themselves (OpenCV's imgcodecs, which pulls in
// GDAL, is not used). The pixels and bytes are those OpenCV 4.6's imread / imwrite gave, which the
// project used before: the same libraries with the same settings.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace excel::data {

// The largest image any reader decodes (twice Pillow's decompression-bomb warning limit): a
// header asking for more is refused before any allocation.
inline constexpr int64_t kMaxImagePixels = 2 * 89478485;

// The formats read and written; anything else is refused naming the file and these.
inline constexpr const char* kImageFormats = "JPEG, PNG";

// h x w x channels bytes, row-major.
struct Pixels {
  int64_t h = 0, w = 0;
  int channels = 0;
  std::vector<uint8_t> data;
};

bool is_jpeg(const std::string& bytes);
bool is_png(const std::string& bytes);

// A JPEG as RGB (grey replicated, CMYK converted as OpenCV did) with libjpeg's default decoding
// (ISLOW IDCT, fancy upsampling); `orientation` receives the EXIF Orientation of the first APP1
// "Exif" segment (1 when absent). Every error and every warning that loses image data (truncated
// file, broken entropy data) throws InputError naming `path`.
Pixels decode_jpeg(const std::string& path, const std::string& bytes, int& orientation);
// 8-bit grey (1 channel) or RGB (3) as a baseline JPEG of the given quality, as cv::imwrite wrote
// it: libjpeg's defaults (4:2:0 for colour, JFIF header, no Huffman optimisation), the quality's
// tables limited to baseline values.
std::string encode_jpeg(const std::string& path, const Pixels& image, int quality = 95);

// What decode_png makes of each PNG colour type.
enum class PngAs {
  // 8-bit RGB as OpenCV's IMREAD_COLOR: palette entries' colours, grey replicated, 1/2/4-bit grey
  // scaled to 0..255, 16-bit samples' high byte, alpha and tRNS dropped (not blended).
  kRgb,
  // One byte a pixel: a palette image's indices (any bit depth), a grey image's values (1/2/4-bit
  // scaled to 0..255, 16-bit saturated at 255, as OpenCV's IMREAD_UNCHANGED + convertTo gave);
  // colour and alpha images are refused.
  kLabel,
};
// The whole PNG through libpng: the signature, every chunk's CRC (critical and ancillary), the
// image data inflated to its end, the chunks up to IEND; width x height at most kMaxImagePixels.
// Throws InputError naming `path` and libpng's complaint ("IDAT: CRC error", "the file ends early
// (truncated)", ...).
Pixels decode_png(const std::string& path, const std::string& bytes, PngAs as);
// 8-bit grey (1), RGB (3) or RGBA (4) as cv::imwrite wrote it: not interlaced, the Sub filter on
// every row, zlib level 1 (Z_BEST_SPEED) with the Z_RLE strategy, no ancillary chunks.
std::string encode_png(const std::string& path, const Pixels& image);

}  // namespace excel::data
