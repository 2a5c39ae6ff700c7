// common/zip_check (src/common/zip_check.cpp): a sound torch.save archive passes; damaged data
// (CRC), a damaged directory and truncation are refused naming the file.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "excel/common/errors.h"
#include "excel/common/zip_check.h"
#include "test_util.h"

using namespace excel;

namespace {

std::string message_of(const std::string& path) {
  try {
    check_zip_archive(path);
  } catch (const FormatError& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST(ZipCheckTest, damage_anywhere_is_refused_with_the_file_name) {
  const std::string dir = test::temp_dir("zip");
  const std::vector<char> bytes = torch::pickle_save(c10::IValue(torch::arange(4096, torch::kFloat)));
  const std::string good(bytes.begin(), bytes.end());
  auto write = [&](const std::string& name, const std::string& b) {
    std::ofstream(dir + "/" + name, std::ios::binary).write(b.data(), static_cast<std::streamsize>(b.size()));
    return dir + "/" + name;
  };
  EXPECT_EQ(message_of(write("good.pt", good)), "");
  std::string data = good;
  const size_t at = data.find(std::string("\x00\x00\x80\x3f", 4));  // the float 1.0 of the tensor
  ASSERT_NE(at, std::string::npos);
  data[at + 3] = 0x40;
  const std::string damaged = write("data.pt", data);
  EXPECT_NE(message_of(damaged).find(damaged + ": corrupt zip archive: entry"), std::string::npos)
      << message_of(damaged);
  EXPECT_NE(message_of(damaged).find("CRC32 mismatch"), std::string::npos) << message_of(damaged);
  const std::string cut = write("cut.pt", good.substr(0, good.size() - 10));
  EXPECT_NE(message_of(cut).find(cut + ": corrupt zip archive"), std::string::npos) << message_of(cut);
  std::string dir_damage = good;
  dir_damage[good.rfind("PK\x01\x02") + 20] ^= 0x7f;  // a compressed size in the central directory
  const std::string sizes = write("sizes.pt", dir_damage);
  EXPECT_NE(message_of(sizes).find(sizes), std::string::npos) << message_of(sizes);
  std::filesystem::remove_all(dir);
}
