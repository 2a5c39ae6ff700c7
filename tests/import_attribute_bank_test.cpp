// data_tools/import_attribute_bank (the tool, run as a process): a bank in the authors' .pth layout
// becomes our HDF5 bank with the same values; the authors' VOC and COCO banks (../shared, already in
// HDF5) go through their .pth layout and come back bit for bit; a bank of the wrong class count or
// embedding size, or a damaged file, is refused naming the flag and the file, and nothing is written.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <torch/torch.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <limits>
#include <sstream>

#include "authors_bank_pth.h"
#include "excel/build_config.h"
#include "excel/common/h5.h"
#include "excel/common/shape.h"
#include "excel/model/clip_checkpoint.h"
#include "excel/model/random_clip.h"
#include "excel/model/tse.h"
#include "test_util.h"
#include "tiny_setup.h"

using namespace excel;
namespace fs = std::filesystem;

namespace {

// Runs the tool with `args`; returns its exit status, its output in *log.
int run_tool(const std::string& args, const std::string& log_path, std::string* log) {
  const std::string tool = std::string(EXCEL_BUILD_DIR) + "/data_tools/import_attribute_bank";
  const int status = std::system((tool + " " + args + " > " + log_path + " 2>&1").c_str());
  std::ifstream in(log_path);
  std::stringstream s;
  s << in.rdbuf();
  *log = s.str();
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

at::Tensor owner_flags(int64_t C, int64_t A) {
  at::Tensor f = torch::zeros({C, A});
  for (int64_t a = 0; a < A; ++a) f[a % C][a] = 1;
  return f;
}

// The authors' bank `rel` (../shared, in HDF5) written in their .pth layout, imported by the tool:
// both datasets come back bit for bit.
void round_trip_shared_bank(const std::string& h5_path, const std::string& dataset, int64_t classes) {
  const std::string dir = test::temp_dir("import_bank_" + dataset);
  const model::AttributeBank want = model::load_attribute_bank(h5_path);
  ASSERT_EQ(want.centroids.size(0), 512);
  ASSERT_EQ(want.class_flags.size(0), classes);
  test::write_authors_bank_pth(dir + "/bank.pth", want.centroids, want.class_flags);
  std::string log;
  ASSERT_EQ(run_tool("--bank_pth=" + dir + "/bank.pth --data_dataset=" + dataset + " --model_bank=" + dir + "/bank.h5",
                     dir + "/log", &log),
            0)
      << log;
  const model::AttributeBank got = model::load_attribute_bank(dir + "/bank.h5");
  EXPECT_TRUE(torch::equal(got.centroids, want.centroids));
  EXPECT_TRUE(torch::equal(got.class_flags, want.class_flags));
  std::printf("%s bank: centroids %s, class_flags %s, equal after .pth -> import\n", dataset.c_str(),
              shape_str(got.centroids.sizes()).c_str(), shape_str(got.class_flags.sizes()).c_str());
  fs::remove_all(dir);
}

}  // namespace

TEST(ImportAttributeBankTest, the_authors_layout_becomes_our_bank_with_the_same_values) {
  const std::string dir = test::temp_dir("import_bank");
  torch::manual_seed(8);
  const at::Tensor centroids = torch::randn({16, 24}), flags = owner_flags(20, 24);
  test::write_authors_bank_pth(dir + "/bank.pth", centroids, flags);
  std::string log;
  ASSERT_EQ(run_tool("--bank_pth=" + dir + "/bank.pth --model_bank=" + dir + "/bank.h5", dir + "/log", &log), 0) << log;
  // Our writer: the checksum block is there (a required-checksum open succeeds).
  h5::File f = h5::File::open(dir + "/bank.h5", false, h5::Checksum::kRequired);
  EXPECT_TRUE(torch::equal(f.read("centroids"), centroids));
  EXPECT_TRUE(torch::equal(f.read("class_flags"), flags));
  f.close();
  EXPECT_TRUE(torch::equal(model::load_attribute_bank(dir + "/bank.h5").centroids, centroids));
  EXPECT_NE(log.find("20 classes, 24 attributes of size 16"), std::string::npos) << log;
  fs::remove_all(dir);
}

TEST(ImportAttributeBankTest, a_bank_for_another_dataset_or_clip_or_a_damaged_file_is_refused_by_flag_and_file) {
  const std::string dir = test::temp_dir("import_bank_bad");
  torch::manual_seed(9);
  const std::string pth = dir + "/bank.pth", out = dir + "/out.h5";
  test::write_authors_bank_pth(pth, torch::randn({16, 24}), owner_flags(20, 24));
  std::string log;
  // 20 classes are not COCO's 80.
  EXPECT_EQ(run_tool("--bank_pth=" + pth + " --data_dataset=coco --model_bank=" + out, dir + "/log", &log), 1);
  EXPECT_NE(log.find("--bank_pth=" + pth + ": a bank of 20 classes, but --data_dataset=coco has 80"), std::string::npos)
      << log;
  EXPECT_FALSE(fs::exists(out));
  // A CLIP embedding into 16 dimensions takes the bank; one embedding into 32 does not.
  for (int64_t embed : {16, 32}) {
    model::ClipConfig c = test::tiny_clip_config(64, embed);
    c.vocab_size = 600;
    const std::string clip = dir + "/clip" + std::to_string(embed) + ".pt";
    model::save_clip_checkpoint(model::random_clip_tensors(c, 2, torch::kHalf), c, clip,
                                model::CheckpointFormat::kStateDict);
    const int rc = run_tool("--bank_pth=" + pth + " --model_clip=" + clip + " --model_bank=" + out, dir + "/log", &log);
    if (embed == 16) {
      EXPECT_EQ(rc, 0) << log;
      EXPECT_TRUE(fs::exists(out));
      fs::remove(out);
    } else {
      EXPECT_EQ(rc, 1) << log;
      EXPECT_NE(log.find("--bank_pth=" + pth + ": embeddings of size 16, but --model_clip=" + clip + " embeds into 32"),
                std::string::npos)
          << log;
      EXPECT_FALSE(fs::exists(out));
    }
  }
  // A CLIP that is not one is named by its flag.
  std::ofstream(dir + "/junk.pt") << "not a checkpoint";
  EXPECT_EQ(run_tool("--bank_pth=" + pth + " --model_clip=" + dir + "/junk.pt --model_bank=" + out, dir + "/log", &log),
            1);
  EXPECT_NE(log.find("--model_clip=" + dir + "/junk.pt: unknown checkpoint format"), std::string::npos) << log;
  // A truncated bank, and a NaN: the flag, the file and the problem; no output.
  const auto size = fs::file_size(pth);
  fs::resize_file(pth, size - 100);
  EXPECT_EQ(run_tool("--bank_pth=" + pth + " --model_bank=" + out, dir + "/log", &log), 1);
  EXPECT_NE(log.find("--bank_pth=" + pth + ": "), std::string::npos) << log;
  EXPECT_NE(log.find("truncated"), std::string::npos) << log;
  at::Tensor nan = torch::randn({16, 24});
  nan[0][0] = std::numeric_limits<float>::quiet_NaN();
  test::write_authors_bank_pth(pth, nan, owner_flags(20, 24));
  EXPECT_EQ(run_tool("--bank_pth=" + pth + " --model_bank=" + out, dir + "/log", &log), 1);
  EXPECT_NE(log.find("--bank_pth=" + pth + ": centroids contain NaN or Inf"), std::string::npos) << log;
  EXPECT_FALSE(fs::exists(out));
  fs::remove_all(dir);
}

TEST(ImportAttributeBankTest, the_authors_voc_bank_round_trips_bit_for_bit) {
  EXCEL_REQUIRE_SHARED(h5, "data/text/voc_attribute_bank_vitb16.h5");
  round_trip_shared_bank(h5, "voc", 20);
}

TEST(ImportAttributeBankTest, the_authors_coco_bank_round_trips_bit_for_bit) {
  EXCEL_REQUIRE_SHARED(h5, "data/text/coco_attribute_bank_vitb16.h5");
  round_trip_shared_bank(h5, "coco", 80);
}
