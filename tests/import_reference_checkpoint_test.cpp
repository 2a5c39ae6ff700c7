// data_tools/import_reference_checkpoint (the tool, run as a process): a state dict saved by the
// reference's Python code, keys with "module.", imports into a training checkpoint with the heads'
// tensors unchanged and CLIP keys ignored; a file without the heads is refused.
#include <gtest/gtest.h>
#include <torch/csrc/jit/serialization/pickle.h>
#include <torch/torch.h>

#include <cstdlib>
#include <fstream>
#include <map>

#include "excel/build_config.h"
#include "excel/common/h5.h"
#include "test_util.h"
#include "tiny_setup.h"

using namespace excel;

using test::read_params;

TEST(ImportTest, reference_state_dict_with_module_prefix_imports_into_a_training_checkpoint) {
  EXCEL_REQUIRE_SHARED(fx, "fixtures/public/fixture.h5");
  const std::string dir = test::temp_dir("import");
  h5::File f = h5::File::open(fx);
  c10::Dict<std::string, at::Tensor> sd;
  std::map<std::string, at::Tensor> want;
  for (const auto& n : f.list("inputs/heads")) {
    want[n] = f.read("inputs/heads/" + n);
    sd.insert("module." + n, want[n]);
  }
  sd.insert("module.encoder.visual.proj", torch::zeros({4, 4}));  // CLIP keys are ignored
  std::vector<char> bytes = torch::pickle_save(sd);
  std::ofstream(dir + "/ref.pth", std::ios::binary).write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  const std::string tool = std::string(EXCEL_BUILD_DIR) + "/data_tools/import_reference_checkpoint";
  ASSERT_EQ(std::system((tool + " --input=" + dir + "/ref.pth --output=" + dir + "/heads.h5 2>/dev/null").c_str()), 0);
  auto got = read_params(dir + "/heads.h5");
  ASSERT_EQ(got.size(), want.size());
  for (const auto& kv : want) EXPECT_TRUE(torch::equal(kv.second, got.at(kv.first))) << kv.first;
  // A file without the heads is refused with the missing tensor named.
  c10::Dict<std::string, at::Tensor> other;
  other.insert("encoder.x", torch::zeros({1}));
  bytes = torch::pickle_save(other);
  std::ofstream(dir + "/bad.pth", std::ios::binary).write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  EXPECT_NE(std::system((tool + " --input=" + dir + "/bad.pth --output=" + dir + "/bad.h5 2>/dev/null").c_str()), 0);
}
