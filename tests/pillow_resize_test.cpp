// data/pillow_resize (src/data/pillow_resize.cpp): Pillow's fixed-point bilinear taps and nearest,
// and both against Pillow itself (Debian python3-pil).
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <iterator>
#include <random>
#include <string>
#include <vector>

#include "excel/data/pillow_resize.h"
#include "test_util.h"

using namespace excel;

TEST(PillowResizeTest, two_to_one_downscale_uses_the_triangle_taps) {
  // Pillow bilinear at scale 2 has support 2: taps 1/8, 3/8, 3/8, 1/8 around each output pixel.
  at::Tensor row = torch::tensor({0, 80, 160, 240, 16, 48, 200, 100}, torch::kByte).view({1, 8, 1});
  at::Tensor out = data::pillow_resize_bilinear(row, 1, 4).view({4}).to(torch::kInt);
  auto ref = [](double a, double b, double c, double d) {
    return static_cast<int>(std::floor(a / 8 + 3 * b / 8 + 3 * c / 8 + d / 8 + 0.5));
  };
  // Edge outputs renormalise the taps that fall inside the row.
  EXPECT_EQ(out[1].item<int>(), ref(80, 160, 240, 16));
  EXPECT_EQ(out[2].item<int>(), ref(240, 16, 48, 200));
  EXPECT_EQ(out[0].item<int>(), static_cast<int>(std::floor((3 * 0 + 3 * 80 + 160) / 7.0 + 0.5)));
}

TEST(PillowResizeTest, same_size_is_identity_and_constant_stays_constant) {
  at::Tensor img = torch::randint(0, 256, {17, 23, 3}).to(torch::kByte);
  EXPECT_TRUE(torch::equal(data::pillow_resize_bilinear(img, 17, 23), img));
  at::Tensor flat = torch::full({30, 40, 3}, 77, torch::kByte);
  EXPECT_TRUE(torch::equal(data::pillow_resize_bilinear(flat, 61, 13), torch::full({61, 13, 3}, 77, torch::kByte)));
  at::Tensor lab = torch::arange(6).view({2, 3}).to(torch::kByte);
  EXPECT_TRUE(
      torch::equal(data::pillow_resize_nearest(lab, 4, 6), lab.repeat_interleave(2, 0).repeat_interleave(2, 1)));
}

namespace {

// A python3 that has Pillow (Debian's python3-pil lives in /usr/bin/python3's path, which a
// python3 found earlier on PATH may not share), or "".
std::string python_with_pillow() {
  for (const std::string py : {"/usr/bin/python3", "python3"})
    if (std::system((py + " -c 'import PIL.Image' >/dev/null 2>&1").c_str()) == 0) return py;
  return "";
}

void write_bytes(const std::string& path, const at::Tensor& t) {
  at::Tensor c = t.contiguous();
  std::ofstream(path, std::ios::binary).write(reinterpret_cast<const char*>(c.data_ptr<uint8_t>()), c.numel());
}

at::Tensor read_bytes(const std::string& path, std::vector<int64_t> shape) {
  std::ifstream in(path, std::ios::binary);
  std::vector<char> b((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  at::Tensor t = torch::empty(shape, torch::kByte);
  if (static_cast<int64_t>(b.size()) != t.numel()) return at::Tensor();
  std::memcpy(t.data_ptr<uint8_t>(), b.data(), b.size());
  return t;
}

}  // namespace

// Both resizes against Pillow itself (Image.resize with BILINEAR on RGB, NEAREST on "L") on 40
// random sizes with scales 0.3-2.2 per axis, plus 54 -> 61 rows, where the exact source
// coordinate of row 30 is an integer. Needs Debian's python3-pil: skipped without it, failed
// under CI=true.
TEST(PillowResizeTest, matches_pillow_on_random_sizes) {
  const std::string py = python_with_pillow();
  if (py.empty()) {
    if (test::ci_mode()) FAIL() << "CI=true but python3 with Pillow (Debian python3-pil) is absent";
    GTEST_SKIP() << "python3 with Pillow (Debian python3-pil) is absent; skipping the comparison with Pillow";
  }
  const std::string dir = test::temp_dir("pillow_resize");
  const std::string script = dir + "/resize.py";
  std::ofstream(script) << "import sys\n"
                           "from PIL import Image\n"
                           "for line in open(sys.argv[1]):\n"
                           "    mode, h, w, oh, ow, src, dst = line.split()\n"
                           "    h, w, oh, ow = int(h), int(w), int(oh), int(ow)\n"
                           "    im = Image.frombytes(mode, (w, h), open(src, 'rb').read())\n"
                           "    f = Image.BILINEAR if mode == 'RGB' else Image.NEAREST\n"
                           "    open(dst, 'wb').write(im.resize((ow, oh), f).tobytes())\n";
  struct Case {
    int64_t h, w, oh, ow;
  };
  std::vector<Case> cases = {{54, 40, 61, 40}};
  torch::manual_seed(15);
  std::mt19937 gen(15);
  std::uniform_int_distribution<int> side(8, 160);
  std::uniform_real_distribution<double> scale(0.3, 2.2);
  while (cases.size() < 41) {
    const int64_t h = side(gen), w = side(gen);
    const int64_t oh = static_cast<int64_t>(h * scale(gen)), ow = static_cast<int64_t>(w * scale(gen));
    if (oh > 0 && ow > 0) cases.push_back({h, w, oh, ow});
  }
  std::ofstream list(dir + "/cases.txt");
  std::vector<at::Tensor> images, labels;
  for (size_t i = 0; i < cases.size(); ++i) {
    const Case& c = cases[i];
    images.push_back(torch::randint(0, 256, {c.h, c.w, 3}).to(torch::kByte));
    labels.push_back(torch::randint(0, 256, {c.h, c.w}).to(torch::kByte));
    const std::string s = dir + "/" + std::to_string(i);
    write_bytes(s + "_rgb.in", images.back());
    write_bytes(s + "_l.in", labels.back());
    const std::string dims =
        std::to_string(c.h) + " " + std::to_string(c.w) + " " + std::to_string(c.oh) + " " + std::to_string(c.ow) + " ";
    list << "RGB " << dims << s << "_rgb.in " << s << "_rgb.out\n";
    list << "L " << dims << s << "_l.in " << s << "_l.out\n";
  }
  list.close();
  ASSERT_EQ(std::system((py + " " + script + " " + dir + "/cases.txt").c_str()), 0);
  int64_t values = 0, bilinear_diff = 0, nearest_diff = 0;
  for (size_t i = 0; i < cases.size(); ++i) {
    const Case& c = cases[i];
    const std::string s = dir + "/" + std::to_string(i);
    at::Tensor pil_rgb = read_bytes(s + "_rgb.out", {c.oh, c.ow, 3}), pil_l = read_bytes(s + "_l.out", {c.oh, c.ow});
    ASSERT_TRUE(pil_rgb.defined() && pil_l.defined()) << "Pillow's output for case " << i;
    at::Tensor ours_rgb = data::pillow_resize_bilinear(images[i], c.oh, c.ow);
    at::Tensor ours_l = data::pillow_resize_nearest(labels[i], c.oh, c.ow);
    const int64_t db = ours_rgb.ne(pil_rgb).sum().item<int64_t>(), dn = ours_l.ne(pil_l).sum().item<int64_t>();
    EXPECT_EQ(db, 0) << "bilinear " << c.h << "x" << c.w << " -> " << c.oh << "x" << c.ow;
    EXPECT_EQ(dn, 0) << "nearest " << c.h << "x" << c.w << " -> " << c.oh << "x" << c.ow;
    bilinear_diff += db;
    nearest_diff += dn;
    values += pil_rgb.numel() + pil_l.numel();
  }
  std::cout << "[pillow] " << cases.size() << " sizes, " << values << " values compared: " << bilinear_diff
            << " bilinear and " << nearest_diff << " nearest values differ" << std::endl;
  std::filesystem::remove_all(dir);
}
