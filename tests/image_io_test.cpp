// data/image_io (src/data/image_io.cpp): JPEGs decoded as OpenCV decodes them, truncated or corrupt
// JPEG/PNG files refused with the file named, EXIF orientation applied to JPEGs as the reference's
// imageio 2.26 JPEG-PIL reader applies it (§9.1); masks coloured with the VOC palette.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <fstream>
#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>
#include <string>
#include <vector>

#include "excel/common/errors.h"
#include "excel/data/image_io.h"
#include "excel/data/palette_png.h"

namespace excel {
namespace {

// A non-square colour image with structure in both directions (h x w).
cv::Mat test_image_bgr(int h, int w) {
  cv::Mat m(h, w, CV_8UC3);
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x)
      m.at<cv::Vec3b>(y, x) = cv::Vec3b(static_cast<uint8_t>(x * 255 / w), static_cast<uint8_t>(y * 255 / h),
                                        static_cast<uint8_t>((x * 7 + y * 13) % 256));
  return m;
}

std::vector<uint8_t> encode(const cv::Mat& m, const std::string& ext) {
  std::vector<uint8_t> b;
  EXPECT_TRUE(cv::imencode(ext, m, b, {cv::IMWRITE_JPEG_QUALITY, 95}));
  return b;
}

std::string write_file(const std::string& name, const std::vector<uint8_t>& b) {
  const std::string path = ::testing::TempDir() + "/" + name;
  std::ofstream(path, std::ios::binary).write(reinterpret_cast<const char*>(b.data()), static_cast<long>(b.size()));
  return path;
}

// What cv::imread gives without any EXIF handling, as RGB.
at::Tensor opencv_rgb(const std::string& path) {
  cv::Mat m = cv::imread(path, cv::IMREAD_COLOR | cv::IMREAD_IGNORE_ORIENTATION);
  EXPECT_FALSE(m.empty());
  cv::cvtColor(m, m, cv::COLOR_BGR2RGB);
  return torch::from_blob(m.data, {m.rows, m.cols, 3}, torch::kByte).clone();
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

TEST(ImageIoTest, JpegPixelsAreOpenCvs) {
  const std::string colour = write_file("colour.jpg", encode(test_image_bgr(37, 61), ".jpg"));
  EXPECT_TRUE(torch::equal(data::read_rgb(colour), opencv_rgb(colour)));
  cv::Mat grey;
  cv::cvtColor(test_image_bgr(29, 18), grey, cv::COLOR_BGR2GRAY);
  const std::string g = write_file("grey.jpg", encode(grey, ".jpg"));
  at::Tensor back = data::read_rgb(g);
  ASSERT_EQ(back.sizes(), (std::vector<int64_t>{29, 18, 3}));
  EXPECT_TRUE(torch::equal(back, opencv_rgb(g)));
  EXPECT_TRUE(torch::equal(back.select(2, 0), back.select(2, 2)));  // grey replicated
}

TEST(ImageIoTest, TruncatedJpegIsRefusedWithTheFileNamed) {
  std::vector<uint8_t> b = encode(test_image_bgr(300, 400), ".jpg");
  ASSERT_GT(b.size(), 4000u);
  b.resize(2000);
  const std::string path = write_file("truncated.jpg", b);
  const std::string msg = read_error(path);
  EXPECT_NE(msg.find(path), std::string::npos) << msg;
  EXPECT_NE(msg.find("truncated"), std::string::npos) << msg;
}

TEST(ImageIoTest, CorruptJpegIsRefusedWithTheFileNamed) {
  std::vector<uint8_t> b = encode(test_image_bgr(64, 64), ".jpg");
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
  std::vector<uint8_t> png = encode(test_image_bgr(50, 70), ".png");
  const std::string good = write_file("good.png", png);
  EXPECT_TRUE(torch::equal(data::read_rgb(good), opencv_rgb(good)));
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
  const std::vector<uint8_t> plain = encode(test_image_bgr(h, w), ".jpg");
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
