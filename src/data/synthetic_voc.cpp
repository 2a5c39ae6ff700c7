#include "excel/data/synthetic_voc.h"

#include <torch/torch.h>

#include <filesystem>
#include <fstream>
#include <opencv2/core.hpp>
#include <opencv2/imgproc.hpp>
#include <sstream>

#include "excel/common/errors.h"
#include "excel/common/random.h"
#include "excel/data/image_io.h"

namespace fs = std::filesystem;

namespace excel::data {
namespace {

constexpr int kClasses = 20;

// splitmix64 (common/random.h): portable, so every platform draws the same images.
using Rng = SplitMix64;

cv::Scalar class_colour(int c) {  // distinct hue per class, BGR
  cv::Mat hsv(1, 1, CV_8UC3, cv::Scalar(c * 9, 200 + (c % 3) * 25, 170 + (c % 4) * 25)), bgr;
  cv::cvtColor(hsv, bgr, cv::COLOR_HSV2BGR);
  auto v = bgr.at<cv::Vec3b>(0, 0);
  return cv::Scalar(v[0], v[1], v[2]);
}

// Shape c % 7 drawn as a filled 0/255 mask centred at (cx, cy) with radius r.
void draw_shape(cv::Mat& m, int kind, int cx, int cy, int r, double angle) {
  auto poly = [&](int n, double inner) {
    std::vector<cv::Point> pts;
    int steps = inner > 0 ? 2 * n : n;
    for (int k = 0; k < steps; ++k) {
      double rad = (inner > 0 && k % 2) ? r * inner : r;
      double a = angle + 2 * CV_PI * k / steps;
      pts.emplace_back(cx + static_cast<int>(rad * std::cos(a)), cy + static_cast<int>(rad * std::sin(a)));
    }
    cv::fillPoly(m, std::vector<std::vector<cv::Point>>{pts}, 255);
  };
  switch (kind) {
    case 0:
      cv::circle(m, {cx, cy}, r, 255, cv::FILLED);
      break;
    case 1:
      poly(4, 0);
      break;  // square (rotated)
    case 2:
      poly(3, 0);
      break;  // triangle
    case 3:
      cv::ellipse(m, {cx, cy}, {r, r / 2}, angle * 57.3, 0, 360, 255, cv::FILLED);
      break;
    case 4:
      poly(5, 0.45);
      break;  // star
    case 5:
      poly(6, 0);
      break;  // hexagon
    default:  // cross
      cv::rectangle(m, {cx - r, cy - r / 3}, {cx + r, cy + r / 3}, 255, cv::FILLED);
      cv::rectangle(m, {cx - r / 3, cy - r}, {cx + r / 3, cy + r}, 255, cv::FILLED);
  }
}

// Texture (c / 7) % 3: solid, stripes, dots; colour jittered per instance.
void paint(cv::Mat& img, const cv::Mat& shape, int c, Rng& rng) {
  cv::Scalar base = class_colour(c);
  cv::Scalar jit(rng.range(-12, 12), rng.range(-12, 12), rng.range(-12, 12));
  cv::Scalar col = base + jit, dark = base * 0.45;
  int texture = (c / 7) % 3, period = rng.range(6, 12);
  for (int y = 0; y < img.rows; ++y) {
    for (int x = 0; x < img.cols; ++x) {
      if (!shape.at<uchar>(y, x)) continue;
      bool alt = texture == 1   ? ((x + y) / period) % 2 == 1
                 : texture == 2 ? ((x % period) < period / 3 && (y % period) < period / 3)
                                : false;
      const cv::Scalar& s = alt ? dark : col;
      img.at<cv::Vec3b>(y, x) =
          cv::Vec3b(cv::saturate_cast<uchar>(s[0]), cv::saturate_cast<uchar>(s[1]), cv::saturate_cast<uchar>(s[2]));
    }
  }
}

// Two colours, pulled toward their grey by `spread` (1: as drawn), blended by a gradient, noise,
// stripes or a checkerboard.
void background(cv::Mat& img, Rng& rng, double spread) {
  cv::Vec3b a(static_cast<uchar>(rng.range(20, 140)), static_cast<uchar>(rng.range(20, 140)),
              static_cast<uchar>(rng.range(20, 140)));
  cv::Vec3b b(static_cast<uchar>(rng.range(60, 200)), static_cast<uchar>(rng.range(60, 200)),
              static_cast<uchar>(rng.range(60, 200)));
  if (spread != 1.0) {
    for (cv::Vec3b* c : {&a, &b}) {
      const double grey = ((*c)[0] + (*c)[1] + (*c)[2]) / 3.0;
      for (int k = 0; k < 3; ++k) (*c)[k] = cv::saturate_cast<uchar>(grey + spread * ((*c)[k] - grey));
    }
  }
  int kind = rng.range(0, 3), period = rng.range(10, 40);
  for (int y = 0; y < img.rows; ++y) {
    for (int x = 0; x < img.cols; ++x) {
      double t = kind == 0   ? static_cast<double>(y) / img.rows
                 : kind == 1 ? rng.uniform()
                 : kind == 2 ? ((x + 2 * y) / period) % 2 * 0.6
                             : ((x / period + y / period) % 2) * 0.4;
      img.at<cv::Vec3b>(y, x) = a * (1 - t) + b * t;
    }
  }
}

// Image i of the world with `seed`: BGR image and class mask; returns the present classes.
std::vector<int> draw(uint64_t seed, int i, int min_side, int max_side, const SyntheticStyle& style, cv::Mat& img,
                      cv::Mat& mask) {
  Rng rng(seed * 1000003ULL + static_cast<uint64_t>(i) + 1);
  const int w = rng.range(min_side, max_side), h = rng.range(min_side, max_side);
  img.create(h, w, CV_8UC3);
  mask = cv::Mat(h, w, CV_8UC1, cv::Scalar(0));
  background(img, rng, style.background_spread);
  const int n_obj = rng.range(1, style.max_objects);
  std::vector<int> classes;
  while (static_cast<int>(classes.size()) < n_obj) {
    int c = rng.range(0, kClasses - 1);
    if (std::find(classes.begin(), classes.end(), c) == classes.end()) classes.push_back(c);
  }
  for (int c : classes) {
    const int side = std::min(w, h), r = rng.range(static_cast<int>(side * style.min_radius),
                                                       static_cast<int>(side * style.max_radius));
    const int cx = rng.range(r / 2, w - r / 2), cy = rng.range(r / 2, h - r / 2);
    cv::Mat shape(h, w, CV_8UC1, cv::Scalar(0));
    draw_shape(shape, c % 7, cx, cy, r, rng.uniform() * CV_PI);
    paint(img, shape, c, rng);
    mask.setTo(c + 1, shape);
  }
  std::vector<int> present;
  for (int c = 0; c < kClasses; ++c)
    if (cv::countNonZero(mask == c + 1) >= 16)
      present.push_back(c);
    else
      mask.setTo(0, mask == c + 1);
  return present;
}

}  // namespace

SyntheticStyle synthetic_style(const std::string& name) {
  if (name == "small") return {};
  if (name == "large") return {0.2, 0.35, 2, 0.5};
  throw ConfigError("synthetic VOC style '" + name + "': expected small or large");
}

SyntheticImage draw_synthetic_image(uint64_t seed, int index, int min_side, int max_side, int out_side,
                                    const SyntheticStyle& style) {
  if (min_side < 64 || max_side < min_side) throw ConfigError("synthetic VOC: bad image side range");
  cv::Mat img, mask;
  SyntheticImage out;
  out.classes = draw(seed, index, min_side, max_side, style, img, mask);
  if (out_side > 0) {
    cv::resize(img, img, cv::Size(out_side, out_side), 0, 0, cv::INTER_AREA);
    cv::resize(mask, mask, cv::Size(out_side, out_side), 0, 0, cv::INTER_NEAREST);
  }
  cv::cvtColor(img, img, cv::COLOR_BGR2RGB);
  out.width = img.cols;
  out.height = img.rows;
  out.rgb.assign(img.data, img.data + img.total() * 3);
  out.mask.assign(mask.data, mask.data + mask.total());
  return out;
}

namespace {

void write_list(const fs::path& p, const std::vector<std::string>& ids) {
  std::ofstream out(p);
  for (const auto& id : ids) out << id << "\n";
  if (!out) throw InputError(p.string() + ": write failed");
}

// Words for what class c looks like in this world: its shape (c % 7), texture ((c / 7) % 3) and
// colour (hue 18c degrees, value by c % 4), as class_colour, draw_shape and paint draw them.
const char* shape_name(int c) {
  static const char* names[] = {"circle", "square", "triangle", "ellipse", "star", "hexagon", "cross"};
  return names[c % 7];
}
const char* shape_detail(int c) {
  static const char* details[] = {"a round outline with no corners",
                                  "four equal sides and four corners",
                                  "three straight sides and three pointed corners",
                                  "an oval outline, longer than it is wide",
                                  "five pointed arms around its centre",
                                  "six straight sides of equal length",
                                  "two thick bars crossing at right angles"};
  return details[c % 7];
}
const char* texture_detail(int c) {
  static const char* details[] = {"plain and evenly coloured", "covered in dark diagonal stripes",
                                  "covered in small dark square dots"};
  return details[(c / 7) % 3];
}
const char* texture_word(int c) {
  static const char* words[] = {"plain", "striped", "dotted"};
  return words[(c / 7) % 3];
}
const char* colour_name(int c) {
  static const char* names[] = {"red",   "orange",  "orange", "yellow",  "lime",     "green",  "green",
                                "green", "emerald", "teal",   "cyan",    "sky blue", "azure",  "blue",
                                "blue",  "violet",  "purple", "magenta", "pink",     "crimson"};
  return names[c % kClasses];
}
const char* brightness_word(int c) {
  static const char* words[] = {"dark", "medium", "bright", "very bright"};
  return words[c % 4];
}

}  // namespace

std::vector<std::vector<std::string>> synthetic_class_descriptions(const std::vector<std::string>& class_names) {
  if (static_cast<int>(class_names.size()) != kClasses)
    throw ConfigError("synthetic VOC describes " + std::to_string(kClasses) + " classes, given " +
                      std::to_string(class_names.size()) + " names");
  std::vector<std::vector<std::string>> out;
  for (int c = 0; c < kClasses; ++c) {
    const std::string head = "a clean origami " + class_names[static_cast<size_t>(c)] + ". ";
    const std::string shape = shape_name(c), colour = colour_name(c), texture = texture_word(c);
    out.push_back({head + "it is shaped like a " + shape + ".", head + "it has " + shape_detail(c) + ".",
                   head + "its colour is " + colour + ".", head + "it is a " + colour + " " + shape + ".",
                   head + "its surface is " + texture_detail(c) + ".",
                   head + "it is a " + brightness_word(c) + " " + colour + " colour.",
                   head + "it looks like a " + texture + " " + colour + " " + shape + ".",
                   head + "it appears as a " + colour + " " + shape + " in front of a patterned background."});
  }
  return out;
}

SyntheticVocSummary make_synthetic_voc(const SyntheticVocOptions& opt) {
  if (opt.num_images < 2) throw ConfigError("synthetic VOC needs at least 2 images");
  if (opt.min_side < 64 || opt.max_side < opt.min_side) throw ConfigError("synthetic VOC: bad image side range");
  const fs::path root(opt.root);
  for (const char* d : {"JPEGImages", "SegmentationClassAug", "ImageSets/Segmentation"})
    fs::create_directories(root / d);
  SyntheticVocSummary sum;
  const int n_val = std::max(1, static_cast<int>(opt.num_images * opt.val_fraction));
  std::ofstream labels_out(root / "cls_labels.txt");
  for (int i = 0; i < opt.num_images; ++i) {
    char id[32];
    std::snprintf(id, sizeof(id), "synth_%06d", i);
    cv::Mat img, mask;
    const std::vector<int> present = draw(opt.seed, i, opt.min_side, opt.max_side, opt.style, img, mask);
    // JPEG quality 95 and a grey PNG, byte for byte what cv::imwrite wrote before.
    cv::cvtColor(img, img, cv::COLOR_BGR2RGB);
    write_rgb((root / "JPEGImages" / (std::string(id) + ".jpg")).string(),
              torch::from_blob(img.data, {img.rows, img.cols, 3}, torch::kByte));
    write_gray((root / "SegmentationClassAug" / (std::string(id) + ".png")).string(),
               torch::from_blob(mask.data, {mask.rows, mask.cols}, torch::kByte));
    (i < opt.num_images - n_val ? sum.train_ids : sum.val_ids).push_back(id);
    sum.labels.push_back(present);
    labels_out << id;
    for (int c = 0; c < kClasses; ++c)
      labels_out << " " << (std::find(present.begin(), present.end(), c) != present.end() ? 1 : 0);
    labels_out << "\n";
  }
  write_list(root / "ImageSets/Segmentation/train.txt", sum.train_ids);
  write_list(root / "ImageSets/Segmentation/train_aug.txt", sum.train_ids);
  write_list(root / "ImageSets/Segmentation/val.txt", sum.val_ids);
  return sum;
}

std::vector<std::pair<std::string, std::vector<int>>> read_cls_labels(const std::string& path, int num_classes) {
  std::ifstream in(path);
  if (!in) throw InputError(path + ": labels file not found");
  std::vector<std::pair<std::string, std::vector<int>>> out;
  std::string line;
  int lineno = 0;
  while (std::getline(in, line)) {
    ++lineno;
    if (line.empty()) continue;
    std::istringstream ss(line);
    std::string id;
    ss >> id;
    std::vector<int> v;
    int x;
    while (ss >> x) {
      if (x != 0 && x != 1)
        throw FormatError(path + ":" + std::to_string(lineno) + ": label " + std::to_string(x) + " is not 0 or 1");
      v.push_back(x);
    }
    if (static_cast<int>(v.size()) != num_classes)
      throw FormatError(path + ":" + std::to_string(lineno) + ": expected " + std::to_string(num_classes) +
                        " labels after the id, found " + std::to_string(v.size()));
    out.emplace_back(id, v);
  }
  return out;
}

}  // namespace excel::data
