#include "excel/common/h5.h"

#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <limits>

#include "excel/common/checksum.h"
#include "excel/common/errors.h"

namespace excel::h5 {
hid_t H5T_IEEE_F16LE_compat();
namespace {

// Closes an HDF5 handle with the matching close call.
struct Handle {
  hid_t id;
  herr_t (*closer)(hid_t);
  ~Handle() {
    if (id >= 0) closer(id);
  }
};

void silence_hdf5() {
  static bool done = false;
  if (!done) {
    H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
    done = true;
  }
}

struct TypeMap {
  at::ScalarType scalar;
  hid_t native;
};

TypeMap from_file_type(hid_t type, const std::string& where) {
  H5T_class_t cls = H5Tget_class(type);
  size_t size = H5Tget_size(type);
  if (cls == H5T_FLOAT) {
    if (size == 4) return {at::kFloat, H5T_NATIVE_FLOAT};
    if (size == 8) return {at::kDouble, H5T_NATIVE_DOUBLE};
    if (size == 2) return {at::kHalf, H5T_IEEE_F16LE_compat()};  // same layout: no conversion
  }
  if (cls == H5T_INTEGER) {
    bool is_signed = H5Tget_sign(type) == H5T_SGN_2;
    if (size == 1) return is_signed ? TypeMap{at::kChar, H5T_NATIVE_INT8} : TypeMap{at::kByte, H5T_NATIVE_UINT8};
    if (size == 2 && is_signed) return {at::kShort, H5T_NATIVE_INT16};
    if (size == 4 && is_signed) return {at::kInt, H5T_NATIVE_INT32};
    if (size == 8 && is_signed) return {at::kLong, H5T_NATIVE_INT64};
    if (size == 4) return {at::kLong, H5T_NATIVE_INT64};  // uint32 widened
    if (size == 2) return {at::kInt, H5T_NATIVE_INT32};   // uint16 widened
  }
  if (cls == H5T_ENUM && size == 1) return {at::kBool, H5T_NATIVE_UINT8};  // h5py bool
  throw FormatError(where + ": unsupported HDF5 element type (class " + std::to_string(cls) + ", " +
                    std::to_string(size) + " bytes)");
}

hid_t to_file_type(at::ScalarType s) {
  switch (s) {
    case at::kFloat:
      return H5T_IEEE_F32LE;
    case at::kDouble:
      return H5T_IEEE_F64LE;
    case at::kHalf:
      return H5T_IEEE_F16LE_compat();
    case at::kByte:
      return H5T_STD_U8LE;
    case at::kBool:
      return H5T_STD_U8LE;
    case at::kChar:
      return H5T_STD_I8LE;
    case at::kShort:
      return H5T_STD_I16LE;
    case at::kInt:
      return H5T_STD_I32LE;
    case at::kLong:
      return H5T_STD_I64LE;
    default:
      return -1;
  }
}

hid_t native_of(at::ScalarType s) {
  switch (s) {
    case at::kFloat:
      return H5T_NATIVE_FLOAT;
    case at::kDouble:
      return H5T_NATIVE_DOUBLE;
    case at::kHalf:
      return H5T_IEEE_F16LE_compat();
    case at::kByte:
    case at::kBool:
      return H5T_NATIVE_UINT8;
    case at::kChar:
      return H5T_NATIVE_INT8;
    case at::kShort:
      return H5T_NATIVE_INT16;
    case at::kInt:
      return H5T_NATIVE_INT32;
    case at::kLong:
      return H5T_NATIVE_INT64;
    default:
      return -1;
  }
}

// Whether `path` starts with the HDF5 signature (a file written without our checksum block).
bool starts_with_hdf5_signature(const std::string& path) {
  char head[8] = {0};
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (!f) throw InputError(path + ": cannot open");
  const size_t n = std::fread(head, 1, sizeof head, f);
  std::fclose(f);
  return n == sizeof head && std::memcmp(head, "\x89HDF\r\n\x1a\n", 8) == 0;
}

// Number of elements of a dataspace, as a double (no overflow on corrupt dimensions).
double points_of(hid_t space) {
  const int rank = H5Sget_simple_extent_ndims(space);
  if (rank < 0) return -1;
  std::vector<hsize_t> dims(static_cast<size_t>(rank));
  H5Sget_simple_extent_dims(space, dims.data(), nullptr);
  double n = 1;
  for (hsize_t d : dims) n *= static_cast<double>(d);
  return n;
}

// Creates every missing parent group of `name`.
void make_parents(hid_t file, const std::string& name) {
  size_t pos = 0;
  while ((pos = name.find('/', pos + 1)) != std::string::npos) {
    std::string g = name.substr(0, pos);
    if (g.empty()) continue;
    if (H5Lexists(file, g.c_str(), H5P_DEFAULT) <= 0) {
      Handle gcpl{H5Pcreate(H5P_GROUP_CREATE), H5Pclose};
      H5Pset_obj_track_times(gcpl.id, false);
      Handle h{H5Gcreate2(file, g.c_str(), H5P_DEFAULT, gcpl.id, H5P_DEFAULT), H5Gclose};
      if (h.id < 0) throw FormatError("cannot create group " + g);
    }
  }
}

}  // namespace

// IEEE half type built once (HDF5 has no predefined little-endian half).
hid_t H5T_IEEE_F16LE_compat() {
  static hid_t t = [] {
    hid_t h = H5Tcopy(H5T_IEEE_F32LE);
    H5Tset_fields(h, 15, 10, 5, 0, 10);
    H5Tset_size(h, 2);
    H5Tset_ebias(h, 15);
    return h;
  }();
  return t;
}

File File::open(const std::string& path, bool writable, Checksum checksum) {
  silence_hdf5();
  if (!std::filesystem::is_regular_file(path)) throw InputError(path + ": file not found");
  // The checksum comes first: HDF5 1.10 trusts the sizes and offsets it reads.
  const bool sealed = has_checksum_block(path);
  if (!sealed && checksum == Checksum::kIfPresent && !starts_with_hdf5_signature(path))
    throw FormatError(path +
                      ": not an HDF5 file, or one damaged at its start (neither the HDF5 signature nor an "
                      "ExCEL checksum block)");
  if (sealed || checksum == Checksum::kRequired) verify_checksum_block(path);
  if (H5Fis_hdf5(path.c_str()) <= 0) throw FormatError(path + ": not an HDF5 file (or truncated)");
  hid_t id = H5Fopen(path.c_str(), writable ? H5F_ACC_RDWR : H5F_ACC_RDONLY, H5P_DEFAULT);
  if (id < 0) throw FormatError(path + ": cannot open HDF5 file (truncated or corrupt?)");
  File f(id, path, writable && sealed);
  if (!writable) f.file_bytes_ = static_cast<double>(std::filesystem::file_size(path));
  return f;
}

File File::create(const std::string& path) {
  silence_hdf5();
  Handle fcpl{H5Pcreate(H5P_FILE_CREATE), H5Pclose};
  H5Pset_userblock(fcpl.id, kChecksumBlockBytes);
  hid_t id = H5Fcreate(path.c_str(), H5F_ACC_TRUNC, fcpl.id, H5P_DEFAULT);
  if (id < 0) throw InputError(path + ": cannot create HDF5 file");
  return File(id, path, true);
}

File::File(hid_t id, std::string path, bool seal)
    : id_(id), path_(std::move(path)), seal_(seal), file_bytes_(std::numeric_limits<double>::infinity()) {}

File::File(File&& o) noexcept : id_(o.id_), path_(std::move(o.path_)), seal_(o.seal_), file_bytes_(o.file_bytes_) {
  o.id_ = -1;
}
File& File::operator=(File&& o) noexcept {
  if (this != &o) {
    try {
      close();
    } catch (...) {  // a later open of this file reports the missing checksum
    }
    id_ = o.id_;
    path_ = std::move(o.path_);
    seal_ = o.seal_;
    file_bytes_ = o.file_bytes_;
    o.id_ = -1;
  }
  return *this;
}
File::~File() {
  try {
    close();
  } catch (...) {  // a later open of this file reports the missing checksum
  }
}

void File::close() {
  if (id_ < 0) return;
  const herr_t rc = H5Fclose(id_);
  id_ = -1;
  if (rc < 0) throw InputError(path_ + ": cannot close HDF5 file (disk full?)");
  if (seal_) write_checksum_block(path_);
  seal_ = false;
}

void File::check_size(const std::string& name, double bytes, hid_t dataset) const {
  double bound = file_bytes_;
  if (dataset >= 0) {  // compressed data can expand: deflate by at most ~1032 x
    Handle dcpl{H5Dget_create_plist(dataset), H5Pclose};
    if (dcpl.id >= 0 && H5Pget_nfilters(dcpl.id) > 0) bound = file_bytes_ * 1100 + 1e6;
  }
  if (bytes < 0 || bytes > bound) {
    char n[32];
    std::snprintf(n, sizeof n, "%.0f", bytes);
    throw FormatError(where(name) + ": claims " + n + " bytes, more than the file holds (corrupt sizes?)");
  }
}

std::string File::where(const std::string& name) const {
  return path_ + ": " + name;
}

bool File::exists(const std::string& name) const {
  // Check every prefix: H5Lexists fails on a missing intermediate group.
  size_t pos = 0;
  while (true) {
    pos = name.find('/', pos + 1);
    std::string part = name.substr(0, pos);
    if (!part.empty() && H5Lexists(id_, part.c_str(), H5P_DEFAULT) <= 0) return false;
    if (pos == std::string::npos) return true;
  }
}

std::vector<std::string> File::list(const std::string& group) const {
  std::vector<std::string> names;
  if (!exists(group)) return names;
  Handle g{H5Gopen2(id_, group.c_str(), H5P_DEFAULT), H5Gclose};
  if (g.id < 0) throw FormatError(where(group) + ": not a group");
  H5G_info_t info;
  H5Gget_info(g.id, &info);
  for (hsize_t i = 0; i < info.nlinks; ++i) {
    ssize_t n = H5Lget_name_by_idx(g.id, ".", H5_INDEX_NAME, H5_ITER_INC, i, nullptr, 0, H5P_DEFAULT);
    if (n < 0) throw FormatError(where(group) + ": unreadable member " + std::to_string(i));
    std::string s(static_cast<size_t>(n), '\0');
    H5Lget_name_by_idx(g.id, ".", H5_INDEX_NAME, H5_ITER_INC, i, s.data(), n + 1, H5P_DEFAULT);
    names.push_back(s);
  }
  std::sort(names.begin(), names.end());
  return names;
}

bool File::is_group(const std::string& name) const {
  if (!exists(name)) return false;
  H5O_info_t info;
  if (H5Oget_info_by_name(id_, name.c_str(), &info, H5P_DEFAULT) < 0) return false;
  return info.type == H5O_TYPE_GROUP;
}

at::Tensor File::read(const std::string& name) const {
  if (!exists(name)) throw FormatError(where(name) + ": dataset missing");
  Handle ds{H5Dopen2(id_, name.c_str(), H5P_DEFAULT), H5Dclose};
  if (ds.id < 0) throw FormatError(where(name) + ": cannot open dataset");
  Handle space{H5Dget_space(ds.id), H5Sclose};
  int rank = H5Sget_simple_extent_ndims(space.id);
  std::vector<hsize_t> dims(static_cast<size_t>(std::max(rank, 0)));
  H5Sget_simple_extent_dims(space.id, dims.data(), nullptr);
  Handle type{H5Dget_type(ds.id), H5Tclose};
  TypeMap tm = from_file_type(type.id, where(name));
  check_size(name, points_of(space.id) * static_cast<double>(H5Tget_size(type.id)), ds.id);
  std::vector<int64_t> shape(dims.begin(), dims.end());
  at::ScalarType hold = tm.scalar == at::kHalf ? at::kShort : tm.scalar;
  at::Tensor t = torch::empty(shape, torch::TensorOptions().dtype(hold));
  if (t.numel() > 0 && H5Dread(ds.id, tm.native, H5S_ALL, H5S_ALL, H5P_DEFAULT, t.data_ptr()) < 0) {
    throw FormatError(where(name) + ": read failed (truncated or corrupt file?)");
  }
  if (tm.scalar == at::kHalf) t = t.view(at::kHalf);
  return t;
}

void File::write(const std::string& name, const at::Tensor& tensor, bool chunk_first_dim) {
  at::Tensor t = tensor.contiguous().cpu();
  hid_t ftype = to_file_type(t.scalar_type());
  if (ftype < 0) throw FormatError(where(name) + ": cannot store dtype " + std::string(c10::toString(t.scalar_type())));
  make_parents(id_, name);
  if (H5Lexists(id_, name.c_str(), H5P_DEFAULT) > 0) H5Ldelete(id_, name.c_str(), H5P_DEFAULT);
  std::vector<hsize_t> dims(t.sizes().begin(), t.sizes().end());
  Handle space{
      t.dim() == 0 ? H5Screate(H5S_SCALAR) : H5Screate_simple(static_cast<int>(dims.size()), dims.data(), nullptr),
      H5Sclose};
  Handle dcpl{H5Pcreate(H5P_DATASET_CREATE), H5Pclose};
  H5Pset_obj_track_times(dcpl.id, false);
  if (chunk_first_dim && t.dim() >= 1 && t.numel() > 0) {
    std::vector<hsize_t> chunk = dims;
    chunk[0] = 1;
    H5Pset_chunk(dcpl.id, static_cast<int>(chunk.size()), chunk.data());
  }
  Handle ds{H5Dcreate2(id_, name.c_str(), ftype, space.id, H5P_DEFAULT, dcpl.id, H5P_DEFAULT), H5Dclose};
  if (ds.id < 0) throw FormatError(where(name) + ": cannot create dataset");
  if (t.numel() > 0 && H5Dwrite(ds.id, native_of(t.scalar_type()), H5S_ALL, H5S_ALL, H5P_DEFAULT, t.data_ptr()) < 0) {
    throw FormatError(where(name) + ": write failed (disk full?)");
  }
}

void File::create_rows(const std::string& name, at::ScalarType dtype, const std::vector<int64_t>& shape) {
  hid_t ftype = to_file_type(dtype);
  if (ftype < 0) throw FormatError(where(name) + ": cannot store dtype " + std::string(c10::toString(dtype)));
  make_parents(id_, name);
  std::vector<hsize_t> dims(shape.begin(), shape.end()), chunk = dims;
  chunk[0] = 1;
  Handle space{H5Screate_simple(static_cast<int>(dims.size()), dims.data(), nullptr), H5Sclose};
  Handle dcpl{H5Pcreate(H5P_DATASET_CREATE), H5Pclose};
  H5Pset_obj_track_times(dcpl.id, false);
  if (dims[0] > 0) H5Pset_chunk(dcpl.id, static_cast<int>(chunk.size()), chunk.data());
  Handle ds{H5Dcreate2(id_, name.c_str(), ftype, space.id, H5P_DEFAULT, dcpl.id, H5P_DEFAULT), H5Dclose};
  if (ds.id < 0) throw FormatError(where(name) + ": cannot create dataset");
}

namespace {
// Selects rows [first, first + count) of an open dataset; returns (file space, memory space).
std::pair<hid_t, hid_t> select_rows(hid_t ds, int64_t first, int64_t count, const std::string& where) {
  hid_t fspace = H5Dget_space(ds);
  int rank = H5Sget_simple_extent_ndims(fspace);
  std::vector<hsize_t> dims(static_cast<size_t>(rank));
  H5Sget_simple_extent_dims(fspace, dims.data(), nullptr);
  if (first < 0 || count < 0 || static_cast<hsize_t>(first + count) > dims[0]) {
    H5Sclose(fspace);
    throw FormatError(where + ": rows [" + std::to_string(first) + ", " + std::to_string(first + count) + ") outside " +
                      std::to_string(dims[0]) + " rows");
  }
  std::vector<hsize_t> start(dims.size(), 0), cnt = dims;
  start[0] = static_cast<hsize_t>(first);
  cnt[0] = static_cast<hsize_t>(count);
  H5Sselect_hyperslab(fspace, H5S_SELECT_SET, start.data(), nullptr, cnt.data(), nullptr);
  hid_t mspace = H5Screate_simple(rank, cnt.data(), nullptr);
  return {fspace, mspace};
}
}  // namespace

void File::write_rows(const std::string& name, int64_t first_row, const at::Tensor& rows) {
  at::Tensor t = rows.contiguous();
  Handle ds{H5Dopen2(id_, name.c_str(), H5P_DEFAULT), H5Dclose};
  if (ds.id < 0) throw FormatError(where(name) + ": dataset missing");
  auto sp = select_rows(ds.id, first_row, t.size(0), where(name));
  Handle f{sp.first, H5Sclose}, m{sp.second, H5Sclose};
  if (H5Dwrite(ds.id, native_of(t.scalar_type()), m.id, f.id, H5P_DEFAULT, t.data_ptr()) < 0)
    throw FormatError(where(name) + ": write failed (disk full?)");
}

at::Tensor File::read_rows(const std::string& name, int64_t first_row, int64_t count) const {
  Handle ds{H5Dopen2(id_, name.c_str(), H5P_DEFAULT), H5Dclose};
  if (ds.id < 0) throw FormatError(where(name) + ": dataset missing");
  Handle type{H5Dget_type(ds.id), H5Tclose};
  TypeMap tm = from_file_type(type.id, where(name));
  auto sp = select_rows(ds.id, first_row, count, where(name));
  Handle f{sp.first, H5Sclose}, m{sp.second, H5Sclose};
  std::vector<int64_t> shape = this->shape(name);
  {
    Handle space{H5Dget_space(ds.id), H5Sclose};
    check_size(name, points_of(space.id) * static_cast<double>(H5Tget_size(type.id)), ds.id);
  }
  shape[0] = count;
  at::ScalarType hold = tm.scalar == at::kHalf ? at::kShort : tm.scalar;
  at::Tensor t = torch::empty(shape, torch::TensorOptions().dtype(hold));
  if (H5Dread(ds.id, tm.native, m.id, f.id, H5P_DEFAULT, t.data_ptr()) < 0)
    throw FormatError(where(name) + ": read failed (truncated or corrupt file?)");
  if (tm.scalar == at::kHalf) t = t.view(at::kHalf);
  return t;
}

std::vector<int64_t> File::shape(const std::string& name) const {
  Handle ds{H5Dopen2(id_, name.c_str(), H5P_DEFAULT), H5Dclose};
  if (ds.id < 0) throw FormatError(where(name) + ": dataset missing");
  Handle space{H5Dget_space(ds.id), H5Sclose};
  int rank = H5Sget_simple_extent_ndims(space.id);
  std::vector<hsize_t> dims(static_cast<size_t>(std::max(rank, 0)));
  H5Sget_simple_extent_dims(space.id, dims.data(), nullptr);
  return std::vector<int64_t>(dims.begin(), dims.end());
}

std::vector<std::string> File::read_strings(const std::string& name) const {
  if (!exists(name)) throw FormatError(where(name) + ": dataset missing");
  Handle ds{H5Dopen2(id_, name.c_str(), H5P_DEFAULT), H5Dclose};
  if (ds.id < 0) throw FormatError(where(name) + ": cannot open dataset");
  Handle type{H5Dget_type(ds.id), H5Tclose};
  if (H5Tget_class(type.id) != H5T_STRING) throw FormatError(where(name) + ": not a string dataset");
  Handle space{H5Dget_space(ds.id), H5Sclose};
  hssize_t n = H5Sget_simple_extent_npoints(space.id);
  check_size(name, static_cast<double>(n) * static_cast<double>(H5Tget_size(type.id)), ds.id);
  std::vector<std::string> out;
  if (H5Tis_variable_str(type.id) > 0) {
    std::vector<char*> ptrs(static_cast<size_t>(n));
    Handle mt{H5Tcopy(H5T_C_S1), H5Tclose};
    H5Tset_size(mt.id, H5T_VARIABLE);
    if (H5Dread(ds.id, mt.id, H5S_ALL, H5S_ALL, H5P_DEFAULT, ptrs.data()) < 0)
      throw FormatError(where(name) + ": read failed");
    for (char* p : ptrs) out.emplace_back(p ? p : "");
    H5Dvlen_reclaim(mt.id, space.id, H5P_DEFAULT, ptrs.data());
    return out;
  }
  size_t len = H5Tget_size(type.id);
  std::vector<char> buf(static_cast<size_t>(n) * len);
  if (H5Dread(ds.id, type.id, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf.data()) < 0)
    throw FormatError(where(name) + ": read failed");
  for (hssize_t i = 0; i < n; ++i) {
    const char* p = buf.data() + i * len;
    out.emplace_back(p, strnlen(p, len));
  }
  return out;
}

void File::write_strings(const std::string& name, const std::vector<std::string>& values) {
  make_parents(id_, name);
  if (H5Lexists(id_, name.c_str(), H5P_DEFAULT) > 0) H5Ldelete(id_, name.c_str(), H5P_DEFAULT);
  size_t len = 1;
  for (const auto& v : values) len = std::max(len, v.size());
  std::vector<char> buf(values.size() * len, '\0');
  for (size_t i = 0; i < values.size(); ++i) std::memcpy(buf.data() + i * len, values[i].data(), values[i].size());
  Handle type{H5Tcopy(H5T_C_S1), H5Tclose};
  H5Tset_size(type.id, len);
  H5Tset_strpad(type.id, H5T_STR_NULLPAD);
  hsize_t dims[1] = {values.size()};
  Handle space{H5Screate_simple(1, dims, nullptr), H5Sclose};
  Handle dcpl{H5Pcreate(H5P_DATASET_CREATE), H5Pclose};
  H5Pset_obj_track_times(dcpl.id, false);
  Handle ds{H5Dcreate2(id_, name.c_str(), type.id, space.id, H5P_DEFAULT, dcpl.id, H5P_DEFAULT), H5Dclose};
  if (ds.id < 0 || H5Dwrite(ds.id, type.id, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf.data()) < 0)
    throw FormatError(where(name) + ": cannot write strings");
}

bool File::has_attr(const std::string& name) const {
  return H5Aexists(id_, name.c_str()) > 0;
}

namespace {
// Elements of an attribute; attributes here are small (scalars, short lists), so a count beyond
// 2^20 is a corrupt file rather than a reason to allocate.
size_t attr_points(hid_t attr, const std::string& where) {
  Handle space{H5Aget_space(attr), H5Sclose};
  const hssize_t n = H5Sget_simple_extent_npoints(space.id);
  if (n < 0 || n > (1 << 20)) throw FormatError(where + ": unreadable or oversized attribute");
  return static_cast<size_t>(n);
}

std::vector<double> read_attr_numbers(hid_t file, const std::string& name, const std::string& where) {
  if (H5Aexists(file, name.c_str()) <= 0) throw FormatError(where + ": attribute missing");
  Handle a{H5Aopen(file, name.c_str(), H5P_DEFAULT), H5Aclose};
  std::vector<double> v(attr_points(a.id, where));
  if (H5Aread(a.id, H5T_NATIVE_DOUBLE, v.data()) < 0) throw FormatError(where + ": attribute is not numeric");
  return v;
}
// Integer attributes read as int64 (exact beyond 2^53, where a double is not); a floating-point
// attribute is accepted when every value is a whole number that int64 holds.
std::vector<int64_t> read_attr_ints(hid_t file, const std::string& name, const std::string& where) {
  if (H5Aexists(file, name.c_str()) <= 0) throw FormatError(where + ": attribute missing");
  Handle a{H5Aopen(file, name.c_str(), H5P_DEFAULT), H5Aclose};
  Handle type{H5Aget_type(a.id), H5Tclose};
  if (H5Tget_class(type.id) != H5T_INTEGER) {
    std::vector<int64_t> out;
    for (double d : read_attr_numbers(file, name, where)) {
      if (!(d == std::floor(d) && d >= -9.2233720368547758e18 && d < 9.2233720368547758e18))
        throw FormatError(where + ": " + std::to_string(d) + " is not an integer");
      out.push_back(static_cast<int64_t>(d));
    }
    return out;
  }
  if (H5Tget_sign(type.id) == H5T_SGN_NONE && H5Tget_size(type.id) >= 8) {
    std::vector<uint64_t> u(attr_points(a.id, where));
    if (H5Aread(a.id, H5T_NATIVE_UINT64, u.data()) < 0) throw FormatError(where + ": unreadable attribute");
    for (uint64_t x : u)
      if (x > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
        throw FormatError(where + ": " + std::to_string(x) + " does not fit in int64");
    return std::vector<int64_t>(u.begin(), u.end());
  }
  std::vector<int64_t> v(attr_points(a.id, where));
  if (H5Aread(a.id, H5T_NATIVE_INT64, v.data()) < 0) throw FormatError(where + ": unreadable attribute");
  return v;
}
}  // namespace

int64_t File::attr_int(const std::string& name) const {
  auto v = read_attr_ints(id_, name, where("@" + name));
  if (v.size() != 1) throw FormatError(where("@" + name) + ": expected a scalar");
  return v[0];
}

double File::attr_double(const std::string& name) const {
  auto v = read_attr_numbers(id_, name, where("@" + name));
  if (v.size() != 1) throw FormatError(where("@" + name) + ": expected a scalar");
  return v[0];
}

std::vector<int64_t> File::attr_ints(const std::string& name) const {
  return read_attr_ints(id_, name, where("@" + name));
}

std::string File::attr_string(const std::string& name) const {
  if (!has_attr(name)) throw FormatError(where("@" + name) + ": attribute missing");
  Handle a{H5Aopen(id_, name.c_str(), H5P_DEFAULT), H5Aclose};
  Handle type{H5Aget_type(a.id), H5Tclose};
  if (H5Tget_class(type.id) != H5T_STRING) throw FormatError(where("@" + name) + ": not a string");
  // One string only: H5Aread fills as many as the attribute holds.
  if (attr_points(a.id, where("@" + name)) != 1) throw FormatError(where("@" + name) + ": expected one string");
  if (H5Tis_variable_str(type.id) > 0) {
    char* p = nullptr;
    Handle mt{H5Tcopy(H5T_C_S1), H5Tclose};
    H5Tset_size(mt.id, H5T_VARIABLE);
    if (H5Aread(a.id, mt.id, &p) < 0) throw FormatError(where("@" + name) + ": unreadable string");
    std::string s = p ? p : "";
    H5free_memory(p);
    return s;
  }
  size_t len = H5Tget_size(type.id);
  if (len == 0 || len > (1 << 20)) throw FormatError(where("@" + name) + ": unreadable or oversized string");
  std::string s(len, '\0');
  if (H5Aread(a.id, type.id, s.data()) < 0) throw FormatError(where("@" + name) + ": unreadable string");
  return std::string(s.c_str());
}

namespace {
void write_attr(hid_t file, const std::string& name, hid_t type, const void* data) {
  if (H5Aexists(file, name.c_str()) > 0) H5Adelete(file, name.c_str());
  Handle space{H5Screate(H5S_SCALAR), H5Sclose};
  Handle a{H5Acreate2(file, name.c_str(), type, space.id, H5P_DEFAULT, H5P_DEFAULT), H5Aclose};
  H5Awrite(a.id, type, data);
}
}  // namespace

void File::set_attr(const std::string& name, int64_t v) {
  write_attr(id_, name, H5T_NATIVE_INT64, &v);
}
void File::set_attr(const std::string& name, double v) {
  write_attr(id_, name, H5T_NATIVE_DOUBLE, &v);
}
void File::set_attr(const std::string& name, const std::string& v) {
  Handle type{H5Tcopy(H5T_C_S1), H5Tclose};
  H5Tset_size(type.id, std::max<size_t>(1, v.size()));
  H5Tset_strpad(type.id, H5T_STR_NULLPAD);
  write_attr(id_, name, type.id, v.data());
}

}  // namespace excel::h5
