// common/h5: tensors, strings and attributes round-trip; bad files are named.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <filesystem>
#include <fstream>

#include "excel/common/errors.h"
#include "excel/common/h5.h"
#include "test_util.h"

using namespace excel;

TEST(H5Test, tensors_strings_and_attributes_round_trip) {
  const std::string dir = test::temp_dir("h5"), path = dir + "/a.h5";
  torch::manual_seed(2);
  const at::Tensor f = torch::randn({3, 4}), l = torch::arange(5, torch::kLong), b = torch::randint(0, 256, {2, 2}).to(torch::kByte);
  {
    h5::File out = h5::File::create(path);
    out.write("g/f", f);
    out.write("g/l", l);
    out.write("b", b);
    out.write_strings("s", {"one", "two words", ""});
    out.set_attr("i", int64_t{-7});
    out.set_attr("d", 0.25);
    out.set_attr("t", std::string("text"));
  }
  h5::File in = h5::File::open(path);
  EXPECT_TRUE(torch::equal(in.read("g/f"), f));
  EXPECT_TRUE(torch::equal(in.read("g/l"), l));
  EXPECT_TRUE(torch::equal(in.read("b"), b));
  EXPECT_EQ(in.read_strings("s"), (std::vector<std::string>{"one", "two words", ""}));
  EXPECT_EQ(in.attr_int("i"), -7);
  EXPECT_EQ(in.attr_double("d"), 0.25);
  EXPECT_EQ(in.attr_string("t"), "text");
  EXPECT_TRUE(in.exists("g/f"));
  EXPECT_FALSE(in.exists("g/missing"));
  EXPECT_TRUE(in.is_group("g"));
  EXPECT_EQ(in.list("g"), (std::vector<std::string>{"f", "l"}));
  std::filesystem::remove_all(dir);
}

TEST(H5Test, missing_and_corrupt_files_are_named) {
  const std::string dir = test::temp_dir("h5_bad");
  auto expect_named = [](const std::string& path) {
    try {
      h5::File::open(path);
      ADD_FAILURE() << path << " opened";
    } catch (const std::exception& e) {
      EXPECT_NE(std::string(e.what()).find(path), std::string::npos) << e.what();
    }
  };
  expect_named(dir + "/absent.h5");
  std::ofstream(dir + "/text.h5") << "not an HDF5 file";
  expect_named(dir + "/text.h5");
  {
    h5::File out = h5::File::create(dir + "/full.h5");
    out.write("x", torch::randn({256, 256}));
  }
  std::filesystem::resize_file(dir + "/full.h5", std::filesystem::file_size(dir + "/full.h5") / 2);
  try {
    h5::File f = h5::File::open(dir + "/full.h5");
    f.read("x");
    ADD_FAILURE() << "truncated file read";
  } catch (const std::exception& e) {
    EXPECT_NE(std::string(e.what()).find("full.h5"), std::string::npos) << e.what();
  }
  std::filesystem::remove_all(dir);
}
