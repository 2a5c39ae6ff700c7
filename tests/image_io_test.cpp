// data/image_io (src/data/image_io.cpp, jpeg_codec.cpp, png_codec.cpp): JPEG and PNG files read
// and written as OpenCV 4.6's imgcodecs did (bytes and pixels against goldens taken from it), PNGs of
// every colour type and bit depth, other formats refused naming the file, truncated or corrupt
// JPEG/PNG files refused with the file named, EXIF orientation applied to JPEGs as the reference's
// imageio 2.26 JPEG-PIL reader applies it (§9.1); masks coloured with the VOC palette.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <algorithm>
#include <cstdio>  // before jpeglib.h
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include <jpeglib.h>  // LIBJPEG_TURBO_VERSION_NUMBER
#include <png.h>
#include <zlib.h>

#include "excel/common/errors.h"
#include "excel/data/image_io.h"
#include "excel/data/palette_png.h"
#include "libpng_writer.h"

namespace excel {
namespace {

// A non-square RGB image with structure in both directions and a noisy part (h x w x 3).
at::Tensor test_image(int h, int w) {
  at::Tensor m = torch::empty({h, w, 3}, torch::kByte);
  auto a = m.accessor<uint8_t, 3>();
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x) {
      a[y][x][0] = static_cast<uint8_t>(x * 255 / w);
      a[y][x][1] = static_cast<uint8_t>(y * 255 / h);
      a[y][x][2] = static_cast<uint8_t>((x * 7 + y * 13 + (x * y * 2654435761u >> 24)) % 256);
    }
  return m;
}

std::vector<uint8_t> read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::vector<uint8_t>((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

// The file write_rgb (or write_gray, for [H,W]) makes of `m` as "x<ext>".
std::vector<uint8_t> encode(const at::Tensor& m, const std::string& ext) {
  const std::string path = ::testing::TempDir() + "/encoded" + ext;
  if (m.dim() == 3)
    data::write_rgb(path, m);
  else
    data::write_gray(path, m);
  return read_file(path);
}

std::string write_file(const std::string& name, const std::vector<uint8_t>& b) {
  const std::string path = ::testing::TempDir() + "/" + name;
  std::ofstream(path, std::ios::binary).write(reinterpret_cast<const char*>(b.data()), static_cast<long>(b.size()));
  return path;
}

uint64_t fnv1a(const uint8_t* p, size_t n) {
  uint64_t h = 1469598103934665603ull;
  for (size_t i = 0; i < n; ++i) h = (h ^ p[i]) * 1099511628211ull;
  return h;
}

uint64_t fnv1a(const at::Tensor& t) {
  const at::Tensor c = t.contiguous();
  return fnv1a(c.data_ptr<uint8_t>(), static_cast<size_t>(c.numel()));
}

// The message of the InputError read_rgb throws ("" when it throws none).
std::string read_error(const std::string& path) {
  try {
    data::read_rgb(path);
  } catch (const InputError& e) {
    return e.what();
  }
  return "";
}

// Goldens from OpenCV 4.6.0's imgcodecs (Debian bookworm: libjpeg-turbo 2.1.5, libpng 1.6.39, zlib
// 1.2.13), which wrote and read the project's images before: FNV-1a 64 of the bytes
// cv::imencode(ext, BGR of test_image, {IMWRITE_JPEG_QUALITY, 95}) gave, and of the RGB pixels
// cv::imdecode(IMREAD_COLOR | IMREAD_IGNORE_ORIENTATION) gave for the JPEG. The grey image is the
// blue channel. Other library versions may encode differently: those checks are skipped there.
struct Golden {
  int h, w;
  bool grey;
  uint64_t jpg_bytes, jpg_pixels, png_bytes;
};
constexpr Golden kGoldens[] = {
    {37, 61, false, 0x9f33a76862a9d1b8ull, 0xe71fae3369112523ull, 0x4f2be82bc6cb7d31ull},
    {37, 61, true, 0xa6a40627e71b8f06ull, 0x084bf90c4f07d1dcull, 0x4e2e028b957e5220ull},
    {29, 18, false, 0x547eecb06937e948ull, 0xc98973cf5c1af46aull, 0xae94075e6070de41ull},
    {29, 18, true, 0x242be7401bcf719bull, 0x3abbcf6926f981f5ull, 0x2b943f947f6be81eull},
};

bool golden_libraries() {
  return LIBJPEG_TURBO_VERSION_NUMBER == 2001005 && PNG_LIBPNG_VER == 10639 && ZLIB_VERNUM == 0x12d0;
}

TEST(ImageIoTest, BytesAndPixelsAreOpenCvs) {
  for (const Golden& g : kGoldens) {
    const at::Tensor rgb = test_image(g.h, g.w);
    const at::Tensor m = g.grey ? rgb.select(2, 2).contiguous() : rgb;
    const std::string tag = std::to_string(g.h) + "x" + std::to_string(g.w) + (g.grey ? " grey" : " rgb");
    const std::vector<uint8_t> jpg = encode(m, ".jpg"), png = encode(m, ".png");
    const at::Tensor from_jpg = data::read_rgb(write_file("golden.jpg", jpg));
    const at::Tensor from_png = data::read_rgb(write_file("golden.png", png));
    ASSERT_EQ(from_jpg.sizes(), (std::vector<int64_t>{g.h, g.w, 3})) << tag;
    // PNG is lossless: the pixels come back (grey replicated to RGB).
    EXPECT_TRUE(torch::equal(from_png, g.grey ? m.unsqueeze(2).expand({g.h, g.w, 3}) : m)) << tag;
    if (g.grey) {
      EXPECT_TRUE(torch::equal(from_jpg.select(2, 0), from_jpg.select(2, 2))) << tag;
    }
    if (!golden_libraries()) continue;
    EXPECT_EQ(fnv1a(jpg.data(), jpg.size()), g.jpg_bytes) << tag;
    EXPECT_EQ(fnv1a(from_jpg), g.jpg_pixels) << tag;
    EXPECT_EQ(fnv1a(png.data(), png.size()), g.png_bytes) << tag;
  }
  if (!golden_libraries())
    GTEST_SKIP() << "libjpeg-turbo " << LIBJPEG_TURBO_VERSION_NUMBER << ", libpng " << PNG_LIBPNG_VER << ", zlib "
                 << ZLIB_VERSION << ": not the versions the OpenCV goldens were taken with; bytes not compared";
}

TEST(ImageIoTest, TruncatedJpegIsRefusedWithTheFileNamed) {
  std::vector<uint8_t> b = encode(test_image(300, 400), ".jpg");
  ASSERT_GT(b.size(), 4000u);
  b.resize(2000);
  const std::string path = write_file("truncated.jpg", b);
  const std::string msg = read_error(path);
  EXPECT_NE(msg.find(path), std::string::npos) << msg;
  EXPECT_NE(msg.find("truncated"), std::string::npos) << msg;
}

TEST(ImageIoTest, CorruptJpegIsRefusedWithTheFileNamed) {
  std::vector<uint8_t> b = encode(test_image(64, 64), ".jpg");
  // Destroy the entropy-coded data in the middle of the scan: markers where data should be.
  for (size_t i = b.size() / 2; i < b.size() / 2 + 64; i += 2) {
    b[i] = 0xFF;
    b[i + 1] = 0xD0 + static_cast<uint8_t>(i % 8);  // RSTn markers the stream does not expect
  }
  const std::string path = write_file("corrupt.jpg", b);
  const std::string msg = read_error(path);
  EXPECT_NE(msg.find(path), std::string::npos) << msg;
  // A text file named .jpg.
  const std::string text = write_file("text.jpg", {'h', 'e', 'l', 'l', 'o', '\n'});
  EXPECT_NE(read_error(text).find(text), std::string::npos) << read_error(text);
}

TEST(ImageIoTest, TruncatedOrCrcCorruptPngIsRefusedWithTheFileNamed) {
  std::vector<uint8_t> png = encode(test_image(50, 70), ".png");
  const std::string good = write_file("good.png", png);
  EXPECT_TRUE(torch::equal(data::read_rgb(good), test_image(50, 70)));
  std::vector<uint8_t> cut(png.begin(), png.begin() + static_cast<long>(png.size() / 2));
  const std::string truncated = write_file("truncated.png", cut);
  EXPECT_NE(read_error(truncated).find(truncated), std::string::npos) << read_error(truncated);
  std::vector<uint8_t> bad = png;
  bad[png.size() - 13] ^= 0x01;  // the last IDAT's CRC (IEND is the last 12 bytes)
  const std::string crc = write_file("crc.png", bad);
  const std::string msg = read_error(crc);
  EXPECT_NE(msg.find(crc), std::string::npos) << msg;
  EXPECT_NE(msg.find("CRC"), std::string::npos) << msg;
}

// An APP1 "Exif" segment (big-endian TIFF) whose IFD0 holds one entry: Orientation = value.
std::vector<uint8_t> exif_app1(uint16_t orientation) {
  std::vector<uint8_t> tiff = {'M',
                               'M',
                               0,
                               42,
                               0,
                               0,
                               0,
                               8,  // header, IFD0 at 8
                               0,
                               1,  // one entry
                               0x01,
                               0x12,
                               0,
                               3,
                               0,
                               0,
                               0,
                               1,  // Orientation, SHORT, 1
                               static_cast<uint8_t>(orientation >> 8),
                               static_cast<uint8_t>(orientation),
                               0,
                               0,
                               0,
                               0,
                               0,
                               0};  // no next IFD
  std::vector<uint8_t> seg = {0xFF, 0xE1, 0, 0, 'E', 'x', 'i', 'f', 0, 0};
  seg.insert(seg.end(), tiff.begin(), tiff.end());
  const size_t len = seg.size() - 2;  // the length field counts itself, not the marker
  seg[2] = static_cast<uint8_t>(len >> 8);
  seg[3] = static_cast<uint8_t>(len);
  return seg;
}

std::vector<uint8_t> with_orientation(const std::vector<uint8_t>& jpeg, uint16_t orientation) {
  std::vector<uint8_t> out(jpeg.begin(), jpeg.begin() + 2);  // SOI
  const std::vector<uint8_t> app1 = exif_app1(orientation);
  out.insert(out.end(), app1.begin(), app1.end());
  out.insert(out.end(), jpeg.begin() + 2, jpeg.end());
  return out;
}

TEST(ImageIoTest, JpegExifOrientationIsAppliedAsTheReferenceDoes) {
  const int h = 24, w = 40;
  const std::vector<uint8_t> plain = encode(test_image(h, w), ".jpg");
  at::Tensor upright = data::read_rgb(write_file("upright.jpg", plain));
  ASSERT_EQ(upright.sizes(), (std::vector<int64_t>{h, w, 3}));

  // Orientation 6 ("rotate 90 clockwise to view"): imageio's JPEG-PIL reader returns
  // np.rot90(im, 3), a clockwise quarter turn: out[i][j] = in[h - 1 - j][i], shape [w, h].
  at::Tensor r6 = data::read_rgb(write_file("exif6.jpg", with_orientation(plain, 6)));
  ASSERT_EQ(r6.sizes(), (std::vector<int64_t>{w, h, 3}));
  EXPECT_TRUE(torch::equal(r6, torch::rot90(upright, 3, {0, 1})));
  for (int i : {0, 5, w - 1})
    for (int j : {0, 7, h - 1}) EXPECT_TRUE(torch::equal(r6[i][j], upright[h - 1 - j][i])) << i << "," << j;

  // The other values as imageio's table has them.
  EXPECT_TRUE(torch::equal(data::read_rgb(write_file("exif1.jpg", with_orientation(plain, 1))), upright));
  EXPECT_TRUE(
      torch::equal(data::read_rgb(write_file("exif3.jpg", with_orientation(plain, 3))), torch::rot90(upright, 2)));
  EXPECT_TRUE(
      torch::equal(data::read_rgb(write_file("exif8.jpg", with_orientation(plain, 8))), torch::rot90(upright, 1)));
  EXPECT_TRUE(
      torch::equal(data::read_rgb(write_file("exif2.jpg", with_orientation(plain, 2))), torch::flip(upright, {1})));
  EXPECT_TRUE(
      torch::equal(data::read_rgb(write_file("exif5.jpg", with_orientation(plain, 5))), upright.transpose(0, 1)));
}

// PNGs of every colour type and bit depth, as other encoders write them, read as OpenCV 4.6 read
// them: read_rgb as IMREAD_COLOR (palette colours, grey replicated, 1/2/4-bit grey scaled to
// 0..255, the high byte of 16-bit samples, alpha and tRNS dropped); read_label_png as
// IMREAD_UNCHANGED + convertTo(CV_8U) (palette indices, grey values, 16-bit saturated at 255),
// colour images refused.
TEST(ImageIoTest, PngOfEveryColourTypeAndDepth) {
  const int h = 11, w = 13;
  struct Case {
    int type, depth;
    bool interlaced, trns;
  };
  const std::vector<Case> cases = {
      {PNG_COLOR_TYPE_GRAY, 1, false, false},       {PNG_COLOR_TYPE_GRAY, 2, true, true},
      {PNG_COLOR_TYPE_GRAY, 4, false, false},       {PNG_COLOR_TYPE_GRAY, 8, false, true},
      {PNG_COLOR_TYPE_GRAY, 8, true, false},        {PNG_COLOR_TYPE_GRAY, 16, false, false},
      {PNG_COLOR_TYPE_GRAY_ALPHA, 8, false, false}, {PNG_COLOR_TYPE_GRAY_ALPHA, 16, true, false},
      {PNG_COLOR_TYPE_RGB, 8, false, true},         {PNG_COLOR_TYPE_RGB, 8, true, false},
      {PNG_COLOR_TYPE_RGB, 16, false, false},       {PNG_COLOR_TYPE_RGB_ALPHA, 8, false, false},
      {PNG_COLOR_TYPE_RGB_ALPHA, 16, true, false},  {PNG_COLOR_TYPE_PALETTE, 1, false, true},
      {PNG_COLOR_TYPE_PALETTE, 2, true, false},     {PNG_COLOR_TYPE_PALETTE, 4, false, true},
      {PNG_COLOR_TYPE_PALETTE, 8, true, true},
  };
  for (const Case& c : cases) {
    test::PngSpec s;
    s.h = h;
    s.w = w;
    s.depth = c.depth;
    s.colour_type = c.type;
    s.interlaced = c.interlaced;
    const bool palette = c.type == PNG_COLOR_TYPE_PALETTE, grey = (c.type & PNG_COLOR_MASK_COLOR) == 0;
    const int channels = palette ? 1 : (grey ? 1 : 3) + ((c.type & PNG_COLOR_MASK_ALPHA) ? 1 : 0);
    const int top = (1 << c.depth) - 1;
    if (palette) {
      for (int i = 0; i <= top; ++i)
        s.palette.push_back(
            {static_cast<png_byte>(i * 37), static_cast<png_byte>(255 - i), static_cast<png_byte>(i * 5)});
      if (c.trns) s.trns_alpha.assign(static_cast<size_t>(top + 1) / 2 + 1, 0x40);
    } else {
      s.trns_colour = c.trns;
    }
    std::vector<uint16_t> samples(static_cast<size_t>(h * w * channels));
    for (size_t i = 0; i < samples.size(); ++i) samples[i] = static_cast<uint16_t>((i * 2654435761u >> 7) & top);
    const std::string tag = "type " + std::to_string(c.type) + " depth " + std::to_string(c.depth) +
                            (c.interlaced ? " interlaced" : "") + (c.trns ? " tRNS" : "");
    const std::string path = ::testing::TempDir() + "/every_" + std::to_string(c.type) + "_" + std::to_string(c.depth) +
                             (c.interlaced ? "i" : "") + ".png";
    test::write_png_with_libpng(path, s, samples);

    // What OpenCV gave, from the samples.
    auto to8 = [&](uint16_t v) {
      return static_cast<uint8_t>(c.depth == 16 ? v >> 8 : c.depth < 8 && !palette ? v * 255 / top : v);
    };
    at::Tensor rgb = torch::empty({h, w, 3}, torch::kByte), label = torch::empty({h, w}, torch::kByte);
    for (int p = 0; p < h * w; ++p) {
      const uint16_t* v = &samples[static_cast<size_t>(p * channels)];
      for (int k = 0; k < 3; ++k)
        rgb.data_ptr<uint8_t>()[3 * p + k] = palette ? (&s.palette[v[0]].red)[k] : to8(v[grey ? 0 : k]);
      label.data_ptr<uint8_t>()[p] = c.depth == 16 ? static_cast<uint8_t>(std::min<int>(v[0], 255)) : to8(v[0]);
    }
    EXPECT_TRUE(torch::equal(data::read_rgb(path), rgb)) << tag;
    if (palette || (grey && channels == 1)) {
      EXPECT_TRUE(torch::equal(data::read_label_png(path), label)) << tag;
    } else {
      const std::string msg = test::label_error(path);
      EXPECT_NE(msg.find(path), std::string::npos) << tag << ": " << msg;
      EXPECT_NE(msg.find("expected a single-channel class-index PNG"), std::string::npos) << tag << ": " << msg;
    }
  }
}

// BMP, WebP and the like, which OpenCV also read, are refused naming the file, the format and the
// supported ones; a JPEG is no mask; images are written as .png or .jpg only.
TEST(ImageIoTest, OtherFormatsAreRefusedNamingTheFileAndTheSupportedOnes) {
  const std::vector<std::pair<std::string, std::vector<uint8_t>>> files = {
      {"image.bmp", {'B', 'M', 0x3a, 0, 0, 0, 0, 0, 0, 0, 0x36, 0, 0, 0}},
      {"image.webp", {'R', 'I', 'F', 'F', 0x24, 0, 0, 0, 'W', 'E', 'B', 'P', 'V', 'P', '8', 'L'}},
      {"image.tiff", {'I', 'I', '*', 0, 8, 0, 0, 0}},
      {"image.ppm", {'P', '6', '\n', '2', ' ', '2', '\n', '2', '5', '5', '\n'}},
      {"noise.jpg", {'h', 'e', 'l', 'l', 'o', '\n'}}};
  for (const auto& [name, bytes] : files) {
    const std::string path = write_file(name, bytes);
    const std::string image = read_error(path), label = test::label_error(path);
    EXPECT_NE(image.find(path), std::string::npos) << image;
    EXPECT_NE(image.find("supported: JPEG, PNG"), std::string::npos) << image;
    EXPECT_NE(label.find(path), std::string::npos) << label;
    EXPECT_NE(label.find("supported: PNG"), std::string::npos) << label;
  }
  EXPECT_NE(read_error(::testing::TempDir() + "/image.bmp").find("BMP"), std::string::npos);
  EXPECT_NE(read_error(::testing::TempDir() + "/image.webp").find("WebP"), std::string::npos);
  const std::string jpg = write_file("mask.png", encode(test_image(8, 8).select(2, 0).contiguous(), ".jpg"));
  EXPECT_NE(test::label_error(jpg).find(jpg + ": a JPEG label image, an unsupported format"), std::string::npos)
      << test::label_error(jpg);
  EXPECT_THROW(data::write_rgb(::testing::TempDir() + "/out.bmp", test_image(4, 4)), InputError);
}

// Written through a temporary renamed into place, in folders made on the way.
TEST(ImageIoTest, WritersAreAtomicAndMakeTheFolder) {
  for (const char* ext : {".png", ".jpg"}) {
    const std::string path = ::testing::TempDir() + "/made/on/the/way" + ext;
    std::filesystem::remove_all(::testing::TempDir() + "/made");
    data::write_rgb(path, test_image(5, 7));
    EXPECT_EQ(data::read_rgb(path).sizes(), (std::vector<int64_t>{5, 7, 3}));
    EXPECT_FALSE(std::filesystem::exists(path + ".tmp"));
  }
}

TEST(ImageIoTest, PaletteRgbColoursEachIndexWithTheVocPalette) {
  const at::Tensor labels = torch::tensor({{0, 1, 15}, {255, 2, 0}}, torch::kByte);
  const at::Tensor rgb = data::palette_rgb(labels);
  ASSERT_EQ(rgb.sizes(), (std::vector<int64_t>{2, 3, 3}));
  ASSERT_EQ(rgb.scalar_type(), torch::kByte);
  const auto pal = data::voc_palette();
  for (int64_t y = 0; y < 2; ++y)
    for (int64_t x = 0; x < 3; ++x)
      for (int64_t c = 0; c < 3; ++c)
        EXPECT_EQ(rgb[y][x][c].item<int>(), pal[static_cast<size_t>(labels[y][x].item<int>())][static_cast<size_t>(c)]);
  EXPECT_EQ(rgb[0][1][0].item<int>(), 128);  // class 1 (aeroplane) is (128, 0, 0)
  EXPECT_EQ(rgb[1][0][0].item<int>(), 224);  // 255 (ignore) is (224, 224, 192)
}

}  // namespace
}  // namespace excel
