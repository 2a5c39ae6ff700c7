// train/trainer (src/train/trainer.cpp, with the training checkpoint of src/train/checkpoint.cpp):
// the single-process trainer on synthetic data with a tiny random CLIP; resume after a stop is
// bit-identical to an uninterrupted run (an equivalence rerun per OpenBLAS kernel by
// scripts/test_kernels.sh), and a resume with another seed is refused.
#include <torch/torch.h>

#include <algorithm>
#include <cmath>

#include "excel/common/errors.h"
#include "excel/train/trainer.h"
#include "test_util.h"
#include "tiny_setup.h"

using namespace excel;

using test::read_params;
using test::tiny_setup;

TEST(TrainerTest, resume_after_a_stop_gives_bit_identical_weights) {
  const std::string dir = test::temp_dir("resume");
  train::TrainConfig cfg = tiny_setup(dir);

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
  double worst = 0;
  for (const auto& kv : a) {
    EXPECT_TRUE(torch::equal(kv.second, b.at(kv.first))) << kv.first;
    worst = std::max(worst, (kv.second - b.at(kv.first)).abs().max().item<double>());
  }
  test::report_equivalence("resume on 1 rank vs uninterrupted, weights", worst, 0);
  EXPECT_TRUE(std::isfinite(straight.last_seg_loss));
}

TEST(TrainerTest, resume_with_another_seed_is_refused) {
  const std::string dir = test::temp_dir("resume_seed");
  train::TrainConfig cfg = tiny_setup(dir);
  cfg.output_dir = dir + "/run";
  cfg.stop_after = 1;
  train::run_training(cfg);
  cfg.seed = 8;
  cfg.resume = "auto";
  EXPECT_THROW(train::run_training(cfg), ConfigError);
}
