// train/clip_pretrain (src/train/clip_pretrain.cpp): the tiny CLIP's contrastive pre-training is a
// function of its seed, and a run resumed from its state file ends with the weights of a run never
// stopped; the written checkpoint loads with the ordinary loader.
#include <torch/torch.h>

#include <filesystem>

#include "excel/data/synthetic_voc.h"
#include "excel/model/clip_checkpoint.h"
#include "excel/model/prompts.h"
#include "excel/model/tse.h"
#include "excel/train/clip_pretrain.h"
#include "test_util.h"
#include "tiny_setup.h"

using namespace excel;

namespace {
train::ClipPretrainOptions tiny_options(const std::string& dir, const std::string& out) {
  train::ClipPretrainOptions o;
  o.config = test::tiny_clip_config();
  o.config.vision_layers = 6;
  o.config.pos_grid = 4;
  o.crop = 64;
  o.bpe_path = test::tiny_vocabulary(dir + "/bpe.txt.gz");
  const auto& names = model::dataset_text("voc").class_names;
  const auto sentences = data::synthetic_class_descriptions(names);
  std::vector<model::ClassDescriptions> classes;
  for (size_t c = 0; c < names.size(); ++c) classes.push_back({names[c], sentences[c]});
  o.descriptions_path = dir + "/descriptions.json";
  model::write_class_descriptions(o.descriptions_path, classes);
  o.output_dir = out;
  o.pool = 16;
  o.batch = 4;
  o.steps = 4;
  o.warmup = 2;
  o.ckpt_every = 2;
  return o;
}
}  // namespace

TEST(ClipPretrainTest, resumed_run_ends_with_the_weights_of_an_uninterrupted_one) {
  torch::set_num_threads(1);
  const std::string dir = test::temp_dir("clip_pretrain");
  train::ClipPretrainOptions whole = tiny_options(dir, dir + "/whole");
  const auto r = train::pretrain_clip(whole);
  EXPECT_EQ(r.steps_run, 4);
  EXPECT_TRUE(std::isfinite(r.final_loss));

  train::ClipPretrainOptions part = tiny_options(dir, dir + "/part");
  part.steps = 2;
  EXPECT_EQ(train::pretrain_clip(part).steps_run, 2);
  part.steps = 4;
  EXPECT_EQ(train::pretrain_clip(part).steps_run, 2);  // continues from pretrain_state.pt

  const model::ClipWeights a = model::load_clip_checkpoint(dir + "/whole/clip.state_dict.pt");
  const model::ClipWeights b = model::load_clip_checkpoint(dir + "/part/clip.jit.pt");
  EXPECT_EQ(a.config.vision_layers, 6);
  EXPECT_EQ(a.config.pos_grid, 4);
  const model::ClipWeights init = [&] {
    model::ClipWeights w;
    w.tensors = model::random_clip_tensors(a.config, whole.seed, torch::kHalf);
    return w;
  }();
  bool moved = false;
  for (const auto& kv : a.tensors) {
    EXPECT_TRUE(torch::equal(kv.second, b.get(kv.first))) << kv.first;
    moved = moved || !torch::equal(kv.second, init.tensors.at(kv.first).to(torch::kFloat));
  }
  EXPECT_TRUE(moved);
  std::filesystem::remove_all(dir);
}
