// stages/stage_dump (src/stages/stage_dump.cpp): dump_stages on inputs of other sizes. Parity of
// every dumped stage with the reference fixture is the cross-cutting tests/fixture_parity_test.cpp.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "excel/common/h5.h"
#include "excel/model/clip_checkpoint.h"
#include "excel/model/random_clip.h"
#include "excel/stages/stage_dump.h"
#include "test_util.h"

using namespace excel;

// A fixture set of other sizes (inputs only: no reference stages) must pass through the dump
// tool with every size taken from the files.
TEST(StageDumpTest, other_sizes_are_read_from_the_files) {
  EXCEL_REQUIRE_SHARED(bpe, "data/text/bpe_simple_vocab_16e6.txt.gz");
  const std::string dir = test::temp_dir("othersize");
  model::ClipConfig cfg = model::vit_b16_config();
  cfg.vision_width = 64;
  cfg.vision_heads = 1;
  cfg.vision_layers = 8;
  cfg.pos_grid = 5;
  cfg.text_width = 64;
  cfg.text_heads = 1;
  cfg.text_layers = 1;
  cfg.embed_dim = 24;
  auto tensors = model::random_clip_tensors(cfg, 11, torch::kHalf);
  model::save_clip_checkpoint(tensors, cfg, dir + "/clip.jit.pt", model::CheckpointFormat::kTorchScript);
  {
    h5::File f = h5::File::create(dir + "/fixture.h5");
    torch::manual_seed(0);
    f.write("inputs/images_rgb", torch::randint(0, 256, {3, 96, 96, 3}).to(torch::kByte));
    f.write("inputs/bank/centroids", torch::randn({24, 9}));
    f.write("inputs/bank/class_flags", torch::ones({20, 9}));
    f.write_strings("text/extra_strings", {"one", "two words"});
    f.set_attr("crop", int64_t{96});
    f.set_attr("dataset", std::string("voc"));
    f.set_attr("checkpoint_jit", std::string("clip.jit.pt"));
    f.set_attr("tse_topk_fraction", 0.9);
  }
  stages::dump_stages({"", dir + "/fixture.h5", dir + "/dump.h5", bpe});
  h5::File d = h5::File::open(dir + "/dump.h5");
  EXPECT_EQ(d.read("vision/attn_all").sizes(), at::IntArrayRef({8, 3, 37, 37}));
  EXPECT_EQ(d.read("vision/feats_all").sizes(), at::IntArrayRef({8, 3, 37, 64}));
  EXPECT_EQ(d.read("vision/features").sizes(), at::IntArrayRef({3, 37, 24}));
  EXPECT_EQ(d.read("text/tse_features").sizes(), at::IntArrayRef({45, 24}));
  at::Tensor cam = d.read("cam/static");
  EXPECT_EQ(cam.sizes(), at::IntArrayRef({3, 36, 20}));
  EXPECT_GE(cam.min().item<float>(), 0.f);
  EXPECT_LE(cam.max().item<float>(), 1.f);
  EXPECT_EQ(d.read("text/extra_token_ids").size(0), 2);
}
