#include "excel/data/image_io.h"

#include <torch/torch.h>

// libjpeg needs <cstdio> before it.
#include <csetjmp>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <vector>

#include <jerror.h>
#include <jpeglib.h>

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

// JPEG through libjpeg-turbo itself rather than cv::imread: OpenCV installs only libjpeg's
// error_exit, so its warnings -- "Premature end of JPEG file" among them -- go to stderr without
// the file's name while the decoder fills the missing rows with grey and imread succeeds. There
// is no hook to see them through OpenCV (short of capturing stderr, which is racy with other
// threads). Decoding with the same libjpeg and its default settings (ISLOW IDCT, fancy
// upsampling) gives OpenCV's pixels; here every warning is seen and classified.
struct JpegErrors {
  jpeg_error_mgr pub;
  std::jmp_buf jump;
  bool pixels_complete = false;  // all scanlines read: what follows cannot lose image data
  char message[JMSG_LENGTH_MAX] = {0};
};

[[noreturn]] void jpeg_fail(j_common_ptr c) {
  auto* e = reinterpret_cast<JpegErrors*>(c->err);
  (*c->err->format_message)(c, e->message);
  std::longjmp(e->jump, 1);
}

// Warnings that lose image data (the file ends early, the entropy data breaks off or is
// corrupt) are errors; warnings about metadata or junk between segments, with the image data
// intact, are not: Pillow, the reference's decoder, reads such files (real COCO images have
// "extraneous bytes before marker"), and it refuses truncated ones ("image file is truncated").
void jpeg_warn(j_common_ptr c, int level) {
  if (level >= 0) return;  // trace messages
  auto* e = reinterpret_cast<JpegErrors*>(c->err);
  const int code = c->err->msg_code;
  const bool harmless = code == JWRN_EXTRANEOUS_DATA || code == JWRN_JFIF_MAJOR || code == JWRN_ADOBE_XFORM ||
                        code == JWRN_BOGUS_ICC || code == JWRN_BOGUS_PROGRESSION;
  if (harmless || e->pixels_complete) {
    c->err->num_warnings++;
    return;
  }
  jpeg_fail(c);
}

uint32_t exif_u32(const uint8_t* p, bool le) {
  return le ? (uint32_t{p[0]} | uint32_t{p[1]} << 8 | uint32_t{p[2]} << 16 | uint32_t{p[3]} << 24)
            : (uint32_t{p[0]} << 24 | uint32_t{p[1]} << 16 | uint32_t{p[2]} << 8 | uint32_t{p[3]});
}

uint32_t exif_u16(const uint8_t* p, bool le) {
  return le ? (uint32_t{p[0]} | uint32_t{p[1]} << 8) : (uint32_t{p[0]} << 8 | uint32_t{p[1]});
}

// The EXIF Orientation (tag 0x0112 of IFD0) of the first APP1 "Exif" segment, as Pillow's JPEG
// plugin keeps it (info["exif"]: the first such segment); 1 when absent or unreadable.
int exif_orientation(jpeg_saved_marker_ptr m) {
  for (; m; m = m->next) {
    if (m->marker != JPEG_APP0 + 1 || m->data_length < 14 || std::memcmp(m->data, "Exif\0\0", 6) != 0) continue;
    const uint8_t* t = m->data + 6;  // the TIFF header
    const size_t n = m->data_length - 6;
    const bool le = t[0] == 'I' && t[1] == 'I';
    if (!le && !(t[0] == 'M' && t[1] == 'M')) return 1;
    const uint64_t ifd = exif_u32(t + 4, le);  // 64-bit sums: an offset near 2^32 must not wrap
    if (ifd + 2 > n) return 1;
    const uint32_t count = exif_u16(t + ifd, le);
    for (uint64_t i = 0; i < count && ifd + 2 + 12 * (i + 1) <= n; ++i) {
      const uint8_t* e = t + ifd + 2 + 12 * i;
      if (exif_u16(e, le) != 0x0112) continue;
      const uint32_t type = exif_u16(e + 2, le);
      return static_cast<int>(type == 4 ? exif_u32(e + 8, le) : exif_u16(e + 8, le));
    }
    return 1;
  }
  return 1;
}

struct Decoded {
  int h = 0, w = 0, channels = 0, orientation = 1;
  std::vector<uint8_t> pixels;  // h x w x channels: RGB, or CMYK as libjpeg gives it
};

// Only trivially destructible locals live in this frame, so the longjmp out of libjpeg is safe.
bool decode_jpeg_into(const std::string& bytes, JpegErrors& err, Decoded& out) {
  jpeg_decompress_struct cinfo;
  std::memset(&cinfo, 0, sizeof cinfo);
  cinfo.err = jpeg_std_error(&err.pub);
  err.pub.error_exit = jpeg_fail;
  err.pub.emit_message = jpeg_warn;
  if (setjmp(err.jump)) {
    jpeg_destroy_decompress(&cinfo);
    return false;
  }
  jpeg_create_decompress(&cinfo);
  jpeg_mem_src(&cinfo, reinterpret_cast<const unsigned char*>(bytes.data()), static_cast<unsigned long>(bytes.size()));
  jpeg_save_markers(&cinfo, JPEG_APP0 + 1, 0xFFFF);
  jpeg_read_header(&cinfo, TRUE);
  out.orientation = exif_orientation(cinfo.marker_list);
  const bool cmyk = cinfo.jpeg_color_space == JCS_CMYK || cinfo.jpeg_color_space == JCS_YCCK;
  cinfo.out_color_space = cmyk ? JCS_CMYK : JCS_RGB;  // grey is replicated to RGB by libjpeg
  if (static_cast<uint64_t>(cinfo.image_width) * cinfo.image_height > static_cast<uint64_t>(kMaxImagePixels)) {
    std::snprintf(err.message, sizeof err.message, "%u x %u pixels, more than the %lld accepted", cinfo.image_width,
                  cinfo.image_height, static_cast<long long>(kMaxImagePixels));
    jpeg_destroy_decompress(&cinfo);
    return false;
  }
  jpeg_start_decompress(&cinfo);
  out.h = static_cast<int>(cinfo.output_height);
  out.w = static_cast<int>(cinfo.output_width);
  out.channels = cinfo.output_components;
  out.pixels.resize(static_cast<size_t>(out.h) * out.w * out.channels);
  while (cinfo.output_scanline < cinfo.output_height) {
    JSAMPROW row = out.pixels.data() + static_cast<size_t>(cinfo.output_scanline) * out.w * out.channels;
    jpeg_read_scanlines(&cinfo, &row, 1);
  }
  err.pixels_complete = true;  // e.g. a missing EOI after complete image data is not an error
  jpeg_finish_decompress(&cinfo);
  jpeg_destroy_decompress(&cinfo);
  return true;
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

at::Tensor read_jpeg(const std::string& path, const std::string& bytes) {
  JpegErrors err;
  Decoded d;
  if (!decode_jpeg_into(bytes, err, d)) {
    const bool truncated = err.pub.msg_code == JWRN_JPEG_EOF;
    throw InputError(path + ": corrupt JPEG" + (truncated ? " (the file is truncated)" : "") + ": " + err.message);
  }
  at::Tensor rgb = torch::empty({d.h, d.w, 3}, torch::kByte);
  uint8_t* o = rgb.data_ptr<uint8_t>();
  const size_t n = static_cast<size_t>(d.h) * d.w;
  if (d.channels == 3) {
    std::memcpy(o, d.pixels.data(), n * 3);
  } else {  // CMYK (Adobe's inverted form, as libjpeg returns it): OpenCV's conversion, kept
    for (size_t i = 0; i < n; ++i) {
      const uint8_t* p = &d.pixels[4 * i];
      const int k = p[3];
      for (int c = 0; c < 3; ++c) o[3 * i + c] = static_cast<uint8_t>(k - ((255 - p[c]) * k >> 8));
    }
  }
  return apply_exif_orientation(rgb, d.orientation);
}

std::string read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw InputError(path + ": cannot open image");
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

}  // namespace

at::Tensor read_rgb(const std::string& path) {
  if (!std::filesystem::is_regular_file(path)) throw InputError(path + ": image not found");
  const std::string bytes = read_bytes(path);
  if (bytes.size() >= 3 && static_cast<uint8_t>(bytes[0]) == 0xFF && static_cast<uint8_t>(bytes[1]) == 0xD8 &&
      static_cast<uint8_t>(bytes[2]) == 0xFF)
    return read_jpeg(path, bytes);
  // PNG: libpng reads the whole file first (every chunk CRC, the image data to its end), since
  // OpenCV would let some damage through; OpenCV then converts to RGB as before.
  if (is_png(bytes)) check_png(path, bytes);
  // Other formats never carry an orientation the reference applies (only its JPEG reader
  // rotates), so OpenCV must not apply EXIF either.
  cv::Mat m = cv::imdecode(cv::Mat(1, static_cast<int>(bytes.size()), CV_8U, const_cast<char*>(bytes.data())),
                           cv::IMREAD_COLOR | cv::IMREAD_IGNORE_ORIENTATION);
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

at::Tensor palette_rgb(const at::Tensor& labels) {
  TORCH_CHECK(labels.dim() == 2, "palette_rgb: expected a [H,W] mask");
  std::vector<uint8_t> flat;
  for (const auto& rgb : voc_palette()) flat.insert(flat.end(), rgb.begin(), rgb.end());
  const at::Tensor table = torch::from_blob(flat.data(), {256, 3}, torch::kByte);
  return table.index_select(0, labels.to(torch::kLong).clamp(0, 255).flatten())
      .view({labels.size(0), labels.size(1), 3});
}

}  // namespace excel::data
