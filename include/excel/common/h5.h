// Minimal RAII access to HDF5 files for tensors, strings and attributes.
// Every failure throws excel::FormatError / InputError naming the file and the object.
#pragma once
#include <hdf5.h>

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <string>
#include <vector>

namespace excel::h5 {

// Whether opening a file needs our checksum block (common/checksum.h). Every file File::create
// writes carries one; kIfPresent also reads files written elsewhere (h5py: the authors' fixtures
// and banks), which start with the HDF5 signature; a file with any other start must carry a
// valid block. kRequired is for our own artefacts (checkpoints, cache shards, CAM parts).
enum class Checksum { kIfPresent, kRequired };

class File {
 public:
  // Verifies the checksum block (a CRC32 over the whole file) before HDF5 sees the file.
  static File open(const std::string& path, bool writable = false, Checksum checksum = Checksum::kIfPresent);
  // Truncates; reserves the checksum block, written when the file is closed.
  static File create(const std::string& path);
  File(File&& other) noexcept;
  File& operator=(File&& other) noexcept;
  File(const File&) = delete;
  File& operator=(const File&) = delete;
  ~File();  // close(), errors ignored
  // Closes the file and, when it was created or opened writable with a block, writes its
  // checksum block; InputError naming the file on failure. Writers call it before renaming.
  void close();

  hid_t id() const { return id_; }
  const std::string& path() const { return path_; }

  bool exists(const std::string& name) const;                     // dataset or group, nested names allowed
  std::vector<std::string> list(const std::string& group) const;  // direct children, sorted
  bool is_group(const std::string& name) const;

  at::Tensor read(const std::string& name) const;  // dtype follows the file (f32,f64,i64,i32,u8,...)
  void write(const std::string& name, const at::Tensor& t, bool chunk_first_dim = false);
  // Row-wise access for sample shards: a dataset of `shape` (first axis = rows) chunked one row per
  // chunk, written and read a block of rows at a time.
  void create_rows(const std::string& name, at::ScalarType dtype, const std::vector<int64_t>& shape);
  void write_rows(const std::string& name, int64_t first_row, const at::Tensor& rows);
  at::Tensor read_rows(const std::string& name, int64_t first_row, int64_t count) const;
  std::vector<int64_t> shape(const std::string& name) const;

  std::vector<std::string> read_strings(const std::string& name) const;
  void write_strings(const std::string& name, const std::vector<std::string>& values);

  bool has_attr(const std::string& name) const;
  int64_t attr_int(const std::string& name) const;
  double attr_double(const std::string& name) const;
  std::string attr_string(const std::string& name) const;
  std::vector<int64_t> attr_ints(const std::string& name) const;
  void set_attr(const std::string& name, int64_t v);
  void set_attr(const std::string& name, double v);
  void set_attr(const std::string& name, const std::string& v);

 private:
  File(hid_t id, std::string path, bool seal);
  std::string where(const std::string& name) const;
  // FormatError unless `bytes` of data can come from this file (a bound against corrupt sizes).
  void check_size(const std::string& name, double bytes, hid_t dataset) const;
  hid_t id_ = -1;
  std::string path_;
  bool seal_ = false;      // write the checksum block on close
  double file_bytes_ = 0;  // size when opened
};

}  // namespace excel::h5
