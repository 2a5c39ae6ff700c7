#include "excel/data/image_io.h"

#include <torch/torch.h>

#include <filesystem>
#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "excel/common/errors.h"
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

void write_mat(const std::string& path, const cv::Mat& m) {
  std::filesystem::path p(path);
  if (p.has_parent_path()) std::filesystem::create_directories(p.parent_path());
  if (!cv::imwrite(path, m)) throw InputError(path + ": cannot write image");
}

}  // namespace

at::Tensor read_rgb(const std::string& path) {
  if (!std::filesystem::is_regular_file(path)) throw InputError(path + ": image not found");
  cv::Mat m = cv::imread(path, cv::IMREAD_COLOR);
  if (m.empty()) throw InputError(path + ": cannot decode image (corrupt or unsupported format)");
  cv::cvtColor(m, m, cv::COLOR_BGR2RGB);
  return from_mat(m);
}

at::Tensor read_label_png(const std::string& path) {
  if (!std::filesystem::is_regular_file(path)) throw InputError(path + ": label image not found");
  IndexedImage idx;
  if (read_indexed_png(path, idx))  // palette PNG (VOC SegmentationClass): the indices, not colours
    return torch::from_blob(idx.indices.data(), {idx.h, idx.w}, torch::kByte).clone();
  cv::Mat m = cv::imread(path, cv::IMREAD_UNCHANGED);
  if (m.empty()) throw InputError(path + ": cannot decode label image");
  if (m.channels() != 1)
    throw InputError(path + ": label image has " + std::to_string(m.channels()) +
                     " channels; expected a single-channel class-index PNG");
  if (m.depth() != CV_8U) m.convertTo(m, CV_8U);
  return from_mat(m);
}

void write_rgb(const std::string& path, const at::Tensor& rgb) {
  cv::Mat m = to_mat(rgb);
  cv::cvtColor(m, m, cv::COLOR_RGB2BGR);
  write_mat(path, m);
}

void write_gray(const std::string& path, const at::Tensor& g) {
  write_mat(path, to_mat(g));
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

}  // namespace excel::data
