// data/palette_png (src/data/palette_png.cpp): palette PNG round trip through the mask reader,
// PNGs of every filter type as other encoders write them, the VOC colour map, errors naming the
// file.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <zlib.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "excel/data/image_io.h"
#include "excel/data/palette_png.h"

namespace excel {
namespace {

TEST(PalettePngTest, RoundTripThroughTheMaskReader) {
  const std::string path = ::testing::TempDir() + "/palette_roundtrip.png";
  at::Tensor m = torch::randint(0, 21, {37, 53}, torch::kByte);
  m.index_put_({torch::indexing::Slice(0, 3)}, 255);  // ignore label
  data::write_palette_png(path, m.data_ptr<uint8_t>(), 37, 53);
  at::Tensor back = data::read_label_png(path);
  ASSERT_EQ(back.sizes(), m.sizes());
  EXPECT_TRUE(torch::equal(back, m));
  EXPECT_FALSE(std::filesystem::exists(path + ".tmp"));
}

// A palette PNG whose rows use every PNG filter type (as other encoders write them) decodes to
// the original indices.
TEST(PalettePngTest, DecodesAllFilterTypes) {
  const int W = 19, H = 10;
  std::vector<uint8_t> img(W * H);
  for (int i = 0; i < W * H; ++i) img[i] = static_cast<uint8_t>((i * 37 + i / W * 11) % 23);
  auto paeth = [](int a, int b, int c) {
    int p = a + b - c, pa = std::abs(p - a), pb = std::abs(p - b), pc = std::abs(p - c);
    return pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
  };
  std::vector<uint8_t> raw;
  for (int y = 0; y < H; ++y) {
    const int f = y % 5;
    raw.push_back(static_cast<uint8_t>(f));
    for (int x = 0; x < W; ++x) {
      int a = x ? img[y * W + x - 1] : 0, b = y ? img[(y - 1) * W + x] : 0, c = x && y ? img[(y - 1) * W + x - 1] : 0;
      int pred = f == 0 ? 0 : f == 1 ? a : f == 2 ? b : f == 3 ? (a + b) / 2 : paeth(a, b, c);
      raw.push_back(static_cast<uint8_t>(img[y * W + x] - pred));
    }
  }
  uLongf zlen = compressBound(raw.size());
  std::vector<uint8_t> z(zlen);
  ASSERT_EQ(compress(z.data(), &zlen, raw.data(), raw.size()), Z_OK);
  z.resize(zlen);
  std::vector<uint8_t> png = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
  auto chunk = [&png](const char* type, std::vector<uint8_t> d) {
    for (int s = 24; s >= 0; s -= 8) png.push_back(static_cast<uint8_t>(d.size() >> s));
    const size_t start = png.size();
    png.insert(png.end(), type, type + 4);
    png.insert(png.end(), d.begin(), d.end());
    const uLong crc = crc32(0, png.data() + start, static_cast<uInt>(png.size() - start));
    for (int s = 24; s >= 0; s -= 8) png.push_back(static_cast<uint8_t>(crc >> s));
  };
  chunk("IHDR", {0, 0, 0, W, 0, 0, 0, H, 8, 3, 0, 0, 0});
  chunk("PLTE", std::vector<uint8_t>(3 * 23, 7));
  chunk("IDAT", z);
  chunk("IEND", {});
  const std::string path = ::testing::TempDir() + "/filters.png";
  std::ofstream(path, std::ios::binary).write(reinterpret_cast<const char*>(png.data()), png.size());
  at::Tensor back = data::read_label_png(path);
  ASSERT_EQ(back.size(0), H);
  ASSERT_EQ(back.size(1), W);
  EXPECT_TRUE(torch::equal(back, torch::from_blob(img.data(), {H, W}, torch::kByte)));
  // Truncated image data is an error naming the file.
  png.resize(png.size() - 30);
  std::ofstream(path, std::ios::binary).write(reinterpret_cast<const char*>(png.data()), png.size());
  try {
    data::read_label_png(path);
    FAIL() << "expected an error";
  } catch (const std::exception& e) {
    EXPECT_NE(std::string(e.what()).find("filters.png"), std::string::npos) << e.what();
  }
}

TEST(PalettePngTest, VocColourMap) {
  auto p = data::voc_palette();
  ASSERT_EQ(p.size(), 256u);
  EXPECT_EQ(p[0], (std::array<uint8_t, 3>{0, 0, 0}));
  EXPECT_EQ(p[1], (std::array<uint8_t, 3>{128, 0, 0}));        // aeroplane
  EXPECT_EQ(p[15], (std::array<uint8_t, 3>{192, 128, 128}));   // person
  EXPECT_EQ(p[255], (std::array<uint8_t, 3>{224, 224, 192}));  // ignore
}

TEST(PalettePngTest, UnwritablePathIsNamed) {
  uint8_t px[4] = {0, 1, 2, 3};
  try {
    data::write_palette_png("/proc/no/such/dir/x.png", px, 2, 2);
    FAIL() << "expected an error";
  } catch (const std::exception& e) {
    EXPECT_NE(std::string(e.what()).find("/proc/no/such/dir"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace excel
