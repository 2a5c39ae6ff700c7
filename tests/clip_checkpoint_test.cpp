// model/clip_checkpoint (src/model/clip_checkpoint.cpp): OpenAI CLIP checkpoints in both forms (TorchScript
// archive, state dict) load to identical tensors and a configuration inferred from the shapes;
// generated checkpoints round-trip; missing, misshapen, truncated, unknown, legacy and non-finite
// files are refused naming the file and the tensor.
#include <torch/torch.h>

#include <fstream>

#include "excel/common/errors.h"
#include "excel/common/h5.h"
#include "excel/model/clip_checkpoint.h"
#include "excel/model/random_clip.h"
#include "test_util.h"

using namespace excel;
using model::CheckpointFormat;

namespace {

// Expects load_clip_checkpoint(path) to throw FormatError whose message contains every needle.
void expect_load_error(const std::string& path, const std::vector<std::string>& needles) {
  try {
    model::load_clip_checkpoint(path);
    ADD_FAILURE() << "loading " << path << " did not fail";
  } catch (const FormatError& e) {
    for (const auto& n : needles) EXPECT_NE(std::string(e.what()).find(n), std::string::npos) << e.what();
  }
}

model::ClipConfig tiny_config() {
  model::ClipConfig c = model::vit_b16_config();
  c.vision_width = 64;
  c.vision_heads = 1;
  c.vision_layers = 7;
  c.pos_grid = 4;
  c.text_width = 64;
  c.text_heads = 1;
  c.text_layers = 1;
  c.embed_dim = 16;
  c.vocab_size = 300;
  c.context_length = 16;
  return c;
}

}  // namespace

TEST(CheckpointTest, both_reference_file_forms_give_identical_tensors) {
  EXCEL_REQUIRE_SHARED(jit, "fixtures/public/clip_tiny.jit.pt");
  EXCEL_REQUIRE_SHARED(sd, "fixtures/public/clip_tiny.state_dict.pt");
  EXCEL_REQUIRE_SHARED(fx, "fixtures/public/fixture.h5");
  model::ClipWeights a = model::load_clip_checkpoint(jit), b = model::load_clip_checkpoint(sd);
  ASSERT_EQ(a.tensors.size(), b.tensors.size());
  for (const auto& kv : a.tensors) {
    ASSERT_TRUE(b.tensors.count(kv.first)) << kv.first;
    EXPECT_EQ(kv.second.scalar_type(), torch::kFloat) << kv.first;
    EXPECT_TRUE(torch::equal(kv.second, b.tensors.at(kv.first))) << kv.first;
  }
  h5::File f = h5::File::open(fx);  // configuration inferred from shapes matches the generator's
  EXPECT_EQ(a.config.vision_width, f.attr_int("vision_width"));
  EXPECT_EQ(a.config.vision_heads, f.attr_int("vision_heads"));
  EXPECT_EQ(a.config.vision_layers, f.attr_int("vision_layers"));
  EXPECT_EQ(a.config.patch, f.attr_int("patch"));
  EXPECT_EQ(a.config.embed_dim, f.attr_int("embed_dim"));
  EXPECT_EQ(a.config.text_width, f.attr_int("text_width"));
  EXPECT_EQ(a.config.text_heads, f.attr_int("text_heads"));
  EXPECT_EQ(a.config.text_layers, f.attr_int("text_layers"));
  EXPECT_EQ(a.config.context_length, 77);
  EXPECT_EQ(a.config.vocab_size, 49408);
}

TEST(CheckpointTest, generated_checkpoints_round_trip_in_both_forms) {
  const std::string dir = test::temp_dir("ckpt_rt");
  auto cfg = tiny_config();
  auto tensors = model::random_clip_tensors(cfg, 3, torch::kHalf);
  model::save_clip_checkpoint(tensors, cfg, dir + "/a.jit.pt", CheckpointFormat::kTorchScript);
  model::save_clip_checkpoint(tensors, cfg, dir + "/a.sd.pt", CheckpointFormat::kStateDict);
  model::ClipWeights a = model::load_clip_checkpoint(dir + "/a.jit.pt");
  model::ClipWeights b = model::load_clip_checkpoint(dir + "/a.sd.pt");
  EXPECT_EQ(a.config.describe(), b.config.describe());
  EXPECT_EQ(a.config.vision_layers, 7);
  EXPECT_EQ(a.config.pos_grid, 4);
  for (const auto& kv : tensors) {
    if (kv.first == "logit_scale") continue;
    EXPECT_TRUE(torch::equal(a.get(kv.first), kv.second.to(torch::kFloat))) << kv.first;
    EXPECT_TRUE(torch::equal(b.get(kv.first), kv.second.to(torch::kFloat))) << kv.first;
  }
}

TEST(CheckpointTest, missing_tensor_is_named) {
  const std::string dir = test::temp_dir("ckpt_missing");
  auto cfg = tiny_config();
  auto tensors = model::random_clip_tensors(cfg, 1);
  tensors.erase("visual.transformer.resblocks.3.mlp.c_fc.bias");
  for (auto fmt : {CheckpointFormat::kTorchScript, CheckpointFormat::kStateDict}) {
    const std::string p = dir + (fmt == CheckpointFormat::kStateDict ? "/m.sd.pt" : "/m.jit.pt");
    model::save_clip_checkpoint(tensors, cfg, p, fmt);
    expect_load_error(p, {p, "visual.transformer.resblocks.3.mlp.c_fc.bias", "missing"});
  }
}

TEST(CheckpointTest, wrong_shape_is_named_with_expected_shape) {
  const std::string dir = test::temp_dir("ckpt_shape");
  auto cfg = tiny_config();
  auto tensors = model::random_clip_tensors(cfg, 1);
  tensors["visual.proj"] = torch::zeros({64, 17});
  tensors["text_projection"] = torch::zeros({64, 16});
  model::save_clip_checkpoint(tensors, cfg, dir + "/s.pt", CheckpointFormat::kStateDict);
  expect_load_error(dir + "/s.pt", {dir + "/s.pt", "text_projection", "[64,16]", "[64,17]"});
}

TEST(CheckpointTest, truncated_unknown_and_legacy_files_fail_with_the_file_name) {
  const std::string dir = test::temp_dir("ckpt_bad");
  auto cfg = tiny_config();
  model::save_clip_checkpoint(model::random_clip_tensors(cfg, 1), cfg, dir + "/ok.pt", CheckpointFormat::kTorchScript);
  std::ifstream in(dir + "/ok.pt", std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::ofstream(dir + "/trunc.pt", std::ios::binary)
      .write(bytes.data(), static_cast<std::streamsize>(bytes.size() / 2));
  expect_load_error(dir + "/trunc.pt", {dir + "/trunc.pt", "truncated"});
  std::ofstream(dir + "/junk.pt", std::ios::binary) << "GARBAGE GARBAGE";
  expect_load_error(dir + "/junk.pt", {dir + "/junk.pt", "unknown checkpoint format"});
  std::ofstream(dir + "/legacy.pt", std::ios::binary) << "\x80\x02\x8a\x0alegacy";
  expect_load_error(dir + "/legacy.pt", {dir + "/legacy.pt", "legacy"});
  EXPECT_THROW(model::load_clip_checkpoint(dir + "/absent.pt"), InputError);
}

TEST(CheckpointTest, non_finite_weights_are_rejected) {
  const std::string dir = test::temp_dir("ckpt_nan");
  auto cfg = tiny_config();
  auto tensors = model::random_clip_tensors(cfg, 1);
  tensors["visual.ln_post.bias"][3] = std::nan("");
  model::save_clip_checkpoint(tensors, cfg, dir + "/n.pt", CheckpointFormat::kStateDict);
  expect_load_error(dir + "/n.pt", {"visual.ln_post.bias", "NaN"});
}
