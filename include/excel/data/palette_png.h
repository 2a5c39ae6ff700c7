// Indexed (palette) PNGs as the PASCAL VOC masks and its evaluation server use: one byte per
// pixel, the class index, with the VOC colour map as the PLTE chunk. They are read by
// read_label_png (image_io.h), which gives the indices, not the colours.
#pragma once
#include <array>
#include <cstdint>
#include <string>
#include <vector>

namespace excel::data {

// The PASCAL VOC colour map: 256 RGB entries (class 0 black, 255 = (224, 224, 192)).
std::vector<std::array<uint8_t, 3>> voc_palette();

// Writes an 8-bit indexed PNG of h x w indices (row-major) with the given palette (<= 256
// entries), to a temporary name renamed into place. Throws InputError naming the file.
void write_palette_png(const std::string& path, const uint8_t* indices, int64_t h, int64_t w,
                       const std::vector<std::array<uint8_t, 3>>& palette = voc_palette());

}  // namespace excel::data
