#include "excel/data/image_io.h"

#include <torch/torch.h>

#include <cctype>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <vector>

#include <opencv2/core.hpp>
#include <opencv2/imgproc.hpp>

#include "excel/common/atomic_file.h"
#include "excel/common/errors.h"
#include "excel/data/image_codecs.h"
#include "excel/data/palette_png.h"

namespace excel::data {
namespace {

at::Tensor from_mat(const cv::Mat& m) {
  cv::Mat c = m.isContinuous() ? m : m.clone();
  std::vector<int64_t> shape = {c.rows, c.cols};
  if (c.channels() > 1) shape.push_back(c.channels());
  return torch::from_blob(c.data, shape, torch::kByte).clone();
}

cv::Mat to_mat(const at::Tensor& t) {
  at::Tensor c = t.to(torch::kByte).contiguous();
  int ch = c.dim() == 3 ? static_cast<int>(c.size(2)) : 1;
  cv::Mat m(static_cast<int>(c.size(0)), static_cast<int>(c.size(1)), CV_8UC(ch), c.data_ptr());
  return m.clone();
}

at::Tensor to_tensor(Pixels& p) {
  std::vector<int64_t> shape = {p.h, p.w};
  if (p.channels > 1) shape.push_back(p.channels);
  return torch::from_blob(p.data.data(), shape, torch::kByte).clone();
}

// EXIF orientation as the reference's reader applies it. The reference reads with imageio 2.26's
// v2 `imread`, which opens files in legacy mode: v3 plugins (including "pillow", whose `rotate`
// defaults to False) are skipped, so a .jpg goes to the legacy "JPEG-PIL" plugin, whose reader
// has `exifrotate=True` by default (imageio/plugins/pillow_legacy.py, JPEGFormat.Reader._rotate):
// 3,4 -> rot90 twice; 5,6 -> rot90 three times (90 degrees clockwise); 7,8 -> rot90 once; then
// 2,4,5,7 -> left-right flip. Other formats (PNG-PIL etc.) are never rotated. See §9.1.
at::Tensor apply_exif_orientation(at::Tensor rgb, int orientation) {
  if (orientation < 2 || orientation > 8) return rgb;
  if (orientation == 3 || orientation == 4) rgb = torch::rot90(rgb, 2, {0, 1});
  if (orientation == 5 || orientation == 6) rgb = torch::rot90(rgb, 3, {0, 1});
  if (orientation == 7 || orientation == 8) rgb = torch::rot90(rgb, 1, {0, 1});
  if (orientation == 2 || orientation == 4 || orientation == 5 || orientation == 7) rgb = torch::flip(rgb, {1});
  return rgb.contiguous();
}

std::string read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw InputError(path + ": cannot open image");
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

// The name of the format of `b` from its signature, for JPEG, PNG and a few others that other
// readers accept; "" when unknown.
std::string format_name(const std::string& b) {
  auto starts = [&b](const char* s, size_t n, size_t at = 0) {
    return b.size() >= at + n && b.compare(at, n, s, n) == 0;
  };
  if (is_jpeg(b)) return "JPEG";
  if (is_png(b)) return "PNG";
  if (starts("BM", 2)) return "BMP";
  if (starts("RIFF", 4) && starts("WEBP", 4, 8)) return "WebP";
  if (starts("II*\0", 4) || starts("MM\0*", 4)) return "TIFF";
  if (starts("GIF8", 4)) return "GIF";
  if (starts("\0\0\0\x0cjP  ", 8) || starts("\xff\x4f\xff\x51", 4)) return "JPEG 2000";
  if (b.size() >= 3 && b[0] == 'P' && b[1] >= '1' && b[1] <= '7' && std::isspace(static_cast<unsigned char>(b[2])))
    return "PNM";
  return "";
}

[[noreturn]] void unsupported(const std::string& path, const std::string& bytes, const std::string& what,
                              const std::string& supported) {
  const std::string f = format_name(bytes);
  throw InputError(
      path + ": " +
      (f.empty() ? "unrecognised " + what + " content" : "a " + f + " " + what + ", an unsupported format") +
      "; supported: " + supported);
}

// The extension of `path`, lower case.
std::string extension(const std::string& path) {
  std::string e = std::filesystem::path(path).extension().string();
  for (char& c : e) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return e;
}

void write_pixels(const std::string& path, const at::Tensor& t) {
  at::Tensor c = t.to(torch::kByte).contiguous();
  Pixels p{c.size(0), c.size(1), c.dim() == 3 ? static_cast<int>(c.size(2)) : 1, {}};
  p.data.assign(c.data_ptr<uint8_t>(), c.data_ptr<uint8_t>() + c.numel());
  const std::string ext = extension(path);
  std::string bytes;
  if (ext == ".png")
    bytes = encode_png(path, p);
  else if (ext == ".jpg" || ext == ".jpeg")
    bytes = encode_jpeg(path, p, 95);  // cv::imwrite's default quality
  else
    throw InputError(path + ": cannot write images as '" + ext + "'; use .png or .jpg (" + kImageFormats + ")");
  std::filesystem::path parent = std::filesystem::path(path).parent_path();
  if (!parent.empty()) std::filesystem::create_directories(parent);
  atomic_write(path, bytes);
}

}  // namespace

at::Tensor read_rgb(const std::string& path) {
  if (!std::filesystem::is_regular_file(path)) throw InputError(path + ": image not found");
  const std::string bytes = read_bytes(path);
  if (is_jpeg(bytes)) {
    int orientation = 1;
    Pixels p = decode_jpeg(path, bytes, orientation);
    return apply_exif_orientation(to_tensor(p), orientation);
  }
  // Only the reference's JPEG reader rotates, so a PNG's EXIF is not applied.
  if (is_png(bytes)) {
    Pixels p = decode_png(path, bytes, PngAs::kRgb);
    return to_tensor(p);
  }
  unsupported(path, bytes, "image", kImageFormats);
}

at::Tensor read_label_png(const std::string& path) {
  if (!std::filesystem::is_regular_file(path)) throw InputError(path + ": label image not found");
  const std::string bytes = read_bytes(path);
  if (!is_png(bytes)) unsupported(path, bytes, "label image", "PNG (grey or palette)");
  Pixels p = decode_png(path, bytes, PngAs::kLabel);  // palette PNGs (VOC): the indices
  return to_tensor(p);
}

void write_rgb(const std::string& path, const at::Tensor& rgb) {
  if (rgb.dim() != 3 || rgb.size(2) != 3)
    throw InputError(path + ": write_rgb takes an [H,W,3] image, given " + std::to_string(rgb.dim()) + " dimensions");
  write_pixels(path, rgb);
}

void write_gray(const std::string& path, const at::Tensor& g) {
  if (g.dim() != 2) throw InputError(path + ": write_gray takes an [H,W] image");
  write_pixels(path, g);
}
at::Tensor heatmap_overlay(const at::Tensor& rgb, const at::Tensor& map, double alpha) {
  at::Tensor m8 = (map.clamp(0, 1) * 255).round().to(torch::kByte).contiguous();
  cv::Mat heat = to_mat(m8);
  cv::resize(heat, heat, cv::Size(static_cast<int>(rgb.size(1)), static_cast<int>(rgb.size(0))), 0, 0,
             cv::INTER_LINEAR);
  cv::applyColorMap(heat, heat, cv::COLORMAP_JET);
  cv::cvtColor(heat, heat, cv::COLOR_BGR2RGB);
  cv::Mat base = to_mat(rgb), out;
  cv::addWeighted(base, 1.0 - alpha, heat, alpha, 0.0, out);
  return from_mat(out);
}

at::Tensor palette_rgb(const at::Tensor& labels) {
  TORCH_CHECK(labels.dim() == 2, "palette_rgb: expected a [H,W] mask");
  std::vector<uint8_t> flat;
  for (const auto& rgb : voc_palette()) flat.insert(flat.end(), rgb.begin(), rgb.end());
  const at::Tensor table = torch::from_blob(flat.data(), {256, 3}, torch::kByte);
  return table.index_select(0, labels.to(torch::kLong).clamp(0, 255).flatten())
      .view({labels.size(0), labels.size(1), 3});
}

}  // namespace excel::data
