// data/palette_png (src/data/palette_png.cpp): palette PNG round trip through the mask reader,
// PNGs of every filter type as other encoders write them, 1/2/4/8-bit and interlaced palette
// masks, CRC damage refused, the VOC colour map, errors naming the file.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <png.h>
#include <zlib.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "excel/common/errors.h"
#include "excel/data/image_io.h"
#include "excel/data/palette_png.h"
#include "libpng_writer.h"

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

// Writes an indexed PNG of the given bit depth with libpng (rows packed by png_set_packing).
void write_indexed_with_libpng(const std::string& path, const std::vector<uint8_t>& idx, int h, int w, int depth,
                               bool interlaced) {
  test::PngSpec s;
  s.h = h;
  s.w = w;
  s.depth = depth;
  s.colour_type = PNG_COLOR_TYPE_PALETTE;
  s.interlaced = interlaced;
  for (int i = 0; i < 1 << depth; ++i)
    s.palette.push_back({static_cast<png_byte>(i * 3), static_cast<png_byte>(255 - i), static_cast<png_byte>(i)});
  test::write_png_with_libpng(path, s, std::vector<uint16_t>(idx.begin(), idx.end()));
}

TEST(PalettePngTest, EveryBitDepthGivesTheIndices) {
  const int h = 13, w = 21;  // odd width: the last byte of each packed row is partly padding
  for (int depth : {1, 2, 4, 8})
    for (bool interlaced : {false, true}) {
      std::vector<uint8_t> idx(static_cast<size_t>(h * w));
      for (int i = 0; i < h * w; ++i)
        idx[static_cast<size_t>(i)] = static_cast<uint8_t>((i * 7 + i / w) % (1 << depth));
      const std::string path =
          ::testing::TempDir() + "/depth" + std::to_string(depth) + (interlaced ? "i" : "") + ".png";
      write_indexed_with_libpng(path, idx, h, w, depth, interlaced);
      at::Tensor back = data::read_label_png(path);
      ASSERT_EQ(back.sizes(), (std::vector<int64_t>{h, w})) << path;
      EXPECT_TRUE(torch::equal(back, torch::from_blob(idx.data(), {h, w}, torch::kByte))) << path;
    }
}

TEST(PalettePngTest, CrcDamageIsRefusedWithTheFileNamed) {
  const std::string path = ::testing::TempDir() + "/crc_mask.png";
  at::Tensor m = torch::randint(0, 21, {16, 16}, torch::kByte);
  data::write_palette_png(path, m.data_ptr<uint8_t>(), 16, 16);
  std::string png;
  {
    std::ifstream in(path, std::ios::binary);
    png.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  }
  // A flipped bit in the image data's CRC, in a palette entry, and an ancillary chunk whose CRC
  // is wrong: each is refused, naming the file and the CRC.
  const size_t plte = png.find("PLTE"), idat = png.find("IDAT");
  ASSERT_NE(plte, std::string::npos);
  ASSERT_NE(idat, std::string::npos);
  const size_t idat_len = static_cast<size_t>(static_cast<uint8_t>(png[idat - 2])) << 8 |
                          static_cast<uint8_t>(png[idat - 1]);  // a 16x16 mask: under 64 KiB
  const size_t idat_crc = idat + 4 + idat_len;
  std::string text = png;
  std::string chunk = std::string("\0\0\0\4tEXtabcd\0\0\0\0", 16);  // length 4, "abcd", CRC 0 (wrong)
  text.insert(plte - 4, chunk);
  for (const auto& [name, bytes] : std::vector<std::pair<std::string, std::string>>{
           {"crc_idat.png",
            png.substr(0, idat_crc) + static_cast<char>(png[idat_crc] ^ 0x20) + png.substr(idat_crc + 1)},
           {"crc_plte.png", png.substr(0, plte + 4) + static_cast<char>(png[plte + 4] ^ 0x01) + png.substr(plte + 5)},
           {"crc_text.png", text}}) {
    const std::string bad = ::testing::TempDir() + "/" + name;
    std::ofstream(bad, std::ios::binary) << bytes;
    const std::string msg = test::label_error(bad);
    EXPECT_NE(msg.find(bad), std::string::npos) << name << ": " << msg;
    EXPECT_NE(msg.find("CRC"), std::string::npos) << name << ": " << msg;
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
