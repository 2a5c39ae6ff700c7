#include <csetjmp>
#include <cstdio>  // libjpeg needs <cstdio> before it
#include <cstdlib>
#include <cstring>

#include <jerror.h>
#include <jpeglib.h>

#include "excel/common/errors.h"
#include "excel/data/image_codecs.h"

namespace excel::data {
namespace {

// Every libjpeg warning is seen and classified here. (OpenCV installed only libjpeg's error_exit,
// so its warnings -- "Premature end of JPEG file" among them -- went to stderr without the file's
// name while the decoder filled the missing rows with grey and imread succeeded.)
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

// Only trivially destructible locals live in this frame, so the longjmp out of libjpeg is safe.
// `out` receives RGB, or CMYK as libjpeg gives it.
bool decode_into(const std::string& bytes, JpegErrors& err, Pixels& out, int& orientation) {
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
  orientation = exif_orientation(cinfo.marker_list);
  const bool cmyk = cinfo.jpeg_color_space == JCS_CMYK || cinfo.jpeg_color_space == JCS_YCCK;
  cinfo.out_color_space = cmyk ? JCS_CMYK : JCS_RGB;  // grey is replicated to RGB by libjpeg
  if (static_cast<uint64_t>(cinfo.image_width) * cinfo.image_height > static_cast<uint64_t>(kMaxImagePixels)) {
    std::snprintf(err.message, sizeof err.message, "%u x %u pixels, more than the %lld accepted", cinfo.image_width,
                  cinfo.image_height, static_cast<long long>(kMaxImagePixels));
    jpeg_destroy_decompress(&cinfo);
    return false;
  }
  jpeg_start_decompress(&cinfo);
  out.h = cinfo.output_height;
  out.w = cinfo.output_width;
  out.channels = cinfo.output_components;
  out.data.resize(static_cast<size_t>(out.h * out.w * out.channels));
  while (cinfo.output_scanline < cinfo.output_height) {
    JSAMPROW row = out.data.data() + static_cast<size_t>(cinfo.output_scanline * out.w * out.channels);
    jpeg_read_scanlines(&cinfo, &row, 1);
  }
  err.pixels_complete = true;  // e.g. a missing EOI after complete image data is not an error
  jpeg_finish_decompress(&cinfo);
  jpeg_destroy_decompress(&cinfo);
  return true;
}

// Compresses into a buffer libjpeg mallocs (*buf, *size); only trivially destructible locals.
bool encode_into(const Pixels& image, int quality, JpegErrors& err, unsigned char** buf, unsigned long* size) {
  jpeg_compress_struct cinfo;
  std::memset(&cinfo, 0, sizeof cinfo);
  cinfo.err = jpeg_std_error(&err.pub);
  err.pub.error_exit = jpeg_fail;
  if (setjmp(err.jump)) {
    jpeg_destroy_compress(&cinfo);
    return false;
  }
  jpeg_create_compress(&cinfo);
  jpeg_mem_dest(&cinfo, buf, size);
  cinfo.image_width = static_cast<JDIMENSION>(image.w);
  cinfo.image_height = static_cast<JDIMENSION>(image.h);
  cinfo.input_components = image.channels;
  cinfo.in_color_space = image.channels == 3 ? JCS_RGB : JCS_GRAYSCALE;
  jpeg_set_defaults(&cinfo);
  jpeg_set_quality(&cinfo, quality, TRUE);  // baseline tables
  jpeg_start_compress(&cinfo, TRUE);
  const size_t stride = static_cast<size_t>(image.w * image.channels);
  while (cinfo.next_scanline < cinfo.image_height) {
    JSAMPROW row = const_cast<JSAMPROW>(image.data.data() + stride * cinfo.next_scanline);
    jpeg_write_scanlines(&cinfo, &row, 1);
  }
  jpeg_finish_compress(&cinfo);
  jpeg_destroy_compress(&cinfo);
  return true;
}

}  // namespace

bool is_jpeg(const std::string& bytes) {
  return bytes.size() >= 3 && static_cast<uint8_t>(bytes[0]) == 0xFF && static_cast<uint8_t>(bytes[1]) == 0xD8 &&
         static_cast<uint8_t>(bytes[2]) == 0xFF;
}

Pixels decode_jpeg(const std::string& path, const std::string& bytes, int& orientation) {
  JpegErrors err;
  Pixels d;
  if (!decode_into(bytes, err, d, orientation)) {
    const bool truncated = err.pub.msg_code == JWRN_JPEG_EOF;
    throw InputError(path + ": corrupt JPEG" + (truncated ? " (the file is truncated)" : "") + ": " + err.message);
  }
  if (d.channels == 3) return d;
  // CMYK (Adobe's inverted form, as libjpeg returns it) to RGB as OpenCV converted it.
  Pixels rgb{d.h, d.w, 3, std::vector<uint8_t>(static_cast<size_t>(d.h * d.w * 3))};
  for (size_t i = 0; i < static_cast<size_t>(d.h * d.w); ++i) {
    const uint8_t* p = &d.data[4 * i];
    const int k = p[3];
    for (int c = 0; c < 3; ++c) rgb.data[3 * i + c] = static_cast<uint8_t>(k - ((255 - p[c]) * k >> 8));
  }
  return rgb;
}

std::string encode_jpeg(const std::string& path, const Pixels& image, int quality) {
  if (image.channels != 1 && image.channels != 3)
    throw InputError(path + ": a JPEG holds grey or RGB pixels, not " + std::to_string(image.channels) + " channels");
  if (image.h <= 0 || image.w <= 0 || image.h > 65500 || image.w > 65500)
    throw InputError(path + ": cannot write a " + std::to_string(image.w) + " x " + std::to_string(image.h) +
                     " JPEG (sides 1..65500)");
  JpegErrors err;
  unsigned char* buf = nullptr;
  unsigned long size = 0;
  const bool ok = encode_into(image, quality, err, &buf, &size);
  std::string out = ok ? std::string(reinterpret_cast<const char*>(buf), size) : std::string();
  std::free(buf);
  if (!ok) throw InputError(path + ": cannot encode JPEG: " + err.message);
  return out;
}

}  // namespace excel::data
