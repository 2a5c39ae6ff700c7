// common/checksum (src/common/checksum.cpp): CRC32 of files, the checksum block of our HDF5 files
// (written on close, verified on open, required for our own artefacts), errors naming the file.
#include <gtest/gtest.h>
#include <hdf5.h>
#include <torch/torch.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <string>

#include "excel/common/checksum.h"
#include "excel/common/errors.h"
#include "excel/common/h5.h"
#include "test_util.h"

using namespace excel;

namespace {

void expect_format_error(const std::function<void()>& f, const std::string& path, const std::string& words) {
  try {
    f();
    ADD_FAILURE() << path << " accepted";
  } catch (const FormatError& e) {
    EXPECT_NE(std::string(e.what()).find(path), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find(words), std::string::npos) << e.what();
  }
}

void flip_byte(const std::string& path, uint64_t at) {
  std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
  f.seekg(static_cast<std::streamoff>(at));
  const char c = static_cast<char>(f.get() ^ 0x10);
  f.seekp(static_cast<std::streamoff>(at));
  f.put(c);
}

}  // namespace

TEST(ChecksumTest, crc32_of_a_file_and_from_an_offset) {
  const std::string dir = test::temp_dir("crc"), path = dir + "/a.txt";
  std::ofstream(path) << "xx123456789";
  EXPECT_EQ(crc32_hex(file_crc32(path, 2)), "cbf43926");  // the CRC-32 check value
  EXPECT_NE(file_crc32(path), file_crc32(path, 2));
  EXPECT_THROW(file_crc32(dir + "/absent"), InputError);
  std::filesystem::remove_all(dir);
}

TEST(ChecksumTest, created_files_carry_a_block_that_catches_damage_and_truncation) {
  const std::string dir = test::temp_dir("crc_h5"), path = dir + "/a.h5";
  auto write = [&] {
    h5::File f = h5::File::create(path);
    f.write("x", torch::arange(1000, torch::kFloat));
    f.close();
  };
  write();
  EXPECT_TRUE(has_checksum_block(path));
  verify_checksum_block(path);
  EXPECT_TRUE(h5::File::open(path, false, h5::Checksum::kRequired).read("x").equal(torch::arange(1000, torch::kFloat)));
  const uint64_t size = std::filesystem::file_size(path);
  flip_byte(path, size - 100);  // inside the data
  expect_format_error([&] { h5::File::open(path); }, path, "checksum mismatch");
  write();
  flip_byte(path, 100);  // the block's zero padding
  expect_format_error([&] { h5::File::open(path); }, path, "checksum block is corrupt");
  write();
  std::filesystem::resize_file(path, size - 1);
  expect_format_error([&] { h5::File::open(path); }, path, "truncated");
  std::filesystem::resize_file(path, 100);
  expect_format_error([&] { h5::File::open(path); }, path, "checksum");
  std::filesystem::remove_all(dir);
}

TEST(ChecksumTest, a_file_opened_writable_is_sealed_again_on_close) {
  const std::string dir = test::temp_dir("crc_rw"), path = dir + "/a.h5";
  {
    h5::File f = h5::File::create(path);
    f.write("x", torch::ones({4}));
  }  // the destructor writes the block too
  {
    h5::File f = h5::File::open(path, /*writable=*/true);
    f.write("y", torch::zeros({8}));
  }
  verify_checksum_block(path);
  EXPECT_TRUE(h5::File::open(path, false, h5::Checksum::kRequired).exists("y"));
  std::filesystem::remove_all(dir);
}

TEST(ChecksumTest, foreign_files_are_read_unless_the_block_is_required) {
  const std::string dir = test::temp_dir("crc_foreign"), path = dir + "/foreign.h5";
  const hid_t id = H5Fcreate(path.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);  // as h5py writes
  ASSERT_GE(id, 0);
  H5Fclose(id);
  EXPECT_FALSE(has_checksum_block(path));
  EXPECT_TRUE(h5::File::open(path).list("/").empty());
  expect_format_error([&] { h5::File::open(path, false, h5::Checksum::kRequired); }, path, "no ExCEL checksum block");
  std::ofstream(dir + "/text.h5") << std::string(1000, 'x');
  expect_format_error([&] { h5::File::open(dir + "/text.h5"); }, dir + "/text.h5", "neither the HDF5 signature");
  std::filesystem::remove_all(dir);
}
