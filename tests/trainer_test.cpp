// The single-process trainer on synthetic data with a tiny random CLIP.
#include <torch/csrc/jit/serialization/pickle.h>
#include <torch/torch.h>

#include <fstream>

#include "excel/build_config.h"

#include "excel/common/errors.h"
#include "excel/common/h5.h"
#include "excel/data/synthetic_voc.h"
#include "excel/model/checkpoint.h"
#include "excel/model/random_clip.h"
#include "excel/model/tse.h"
#include "excel/train/trainer.h"
#include "test_util.h"

using namespace excel;

namespace {

// Writes data, a random CLIP and a random bank under dir; returns a config for 6 iterations
// crossing the dynamic-CAM switch (3) and the prediction-target switch (5).
train::TrainConfig tiny_setup(const std::string& dir, const std::string& bpe) {
  data::make_synthetic_voc({dir + "/voc", 10, 96, 128, 0.2, 1});
  model::ClipConfig c = model::vit_b16_config();
  c.vision_width = 64;
  c.vision_heads = 1;
  c.vision_layers = 12;
  c.text_width = 64;
  c.text_heads = 1;
  c.text_layers = 1;
  c.embed_dim = 16;
  model::save_clip_checkpoint(model::random_clip_tensors(c, 2, torch::kHalf), c, dir + "/clip.pt",
                              model::CheckpointFormat::kStateDict);
  torch::manual_seed(3);
  at::Tensor centres = torch::randn({16, 8});
  model::save_attribute_bank({centres / centres.norm(2, {0}, true), torch::ones({20, 8})}, dir + "/bank.h5");
  train::TrainConfig t;
  t.data_root = dir + "/voc";
  t.train_split = "train";
  t.val_split = "val";
  t.clip_checkpoint = dir + "/clip.pt";
  t.bank = dir + "/bank.h5";
  t.bpe_path = bpe;
  t.crop = 64;
  t.adapter_dim = 16;
  t.batch = 2;
  t.max_iters = 6;
  t.warmup_iters = 2;
  t.switch_iter = 3;
  t.pred_target_iter = 5;
  t.base_lr = 1e-3;
  t.eval_every = 1000;
  t.ckpt_every = 1000;
  t.val_limit = 1;
  t.seed = 7;
  return t;
}

std::map<std::string, at::Tensor> read_params(const std::string& ckpt) {
  h5::File f = h5::File::open(ckpt);
  std::map<std::string, at::Tensor> out;
  for (const auto& n : f.list("params")) out[n] = f.read("params/" + n);
  return out;
}

}  // namespace

TEST(TrainerTest, resume_after_a_stop_gives_bit_identical_weights) {
  EXCEL_REQUIRE_SHARED(bpe, "data/text/bpe_simple_vocab_16e6.txt.gz");
  const std::string dir = test::temp_dir("resume");
  train::TrainConfig cfg = tiny_setup(dir, bpe);

  cfg.output_dir = dir + "/straight";
  auto straight = train::run_training(cfg);
  EXPECT_EQ(straight.iterations_done, 6);

  cfg.output_dir = dir + "/interrupted";
  cfg.stop_after = 4;  // stops after the dynamic-CAM switch, before the prediction-target switch
  EXPECT_EQ(train::run_training(cfg).iterations_done, 4);
  cfg.stop_after = 0;
  cfg.resume = "auto";
  EXPECT_EQ(train::run_training(cfg).iterations_done, 6);

  auto a = read_params(dir + "/straight/checkpoint.h5"), b = read_params(dir + "/interrupted/checkpoint.h5");
  ASSERT_EQ(a.size(), b.size());
  ASSERT_GT(a.size(), 0u);
  for (const auto& kv : a) EXPECT_TRUE(torch::equal(kv.second, b.at(kv.first))) << kv.first;
  EXPECT_TRUE(std::isfinite(straight.last_seg_loss));
}

TEST(TrainerTest, resume_with_another_seed_is_refused) {
  EXCEL_REQUIRE_SHARED(bpe, "data/text/bpe_simple_vocab_16e6.txt.gz");
  const std::string dir = test::temp_dir("resume_seed");
  train::TrainConfig cfg = tiny_setup(dir, bpe);
  cfg.output_dir = dir + "/run";
  cfg.stop_after = 1;
  train::run_training(cfg);
  cfg.seed = 8;
  cfg.resume = "auto";
  EXPECT_THROW(train::run_training(cfg), ConfigError);
}

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
