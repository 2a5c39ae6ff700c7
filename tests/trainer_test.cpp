// train/trainer (src/train/trainer.cpp, with the training checkpoint of src/train/checkpoint.cpp):
// the single-process trainer on synthetic data with a tiny random CLIP; resume after a stop is
// bit-identical to an uninterrupted run (an equivalence rerun per OpenBLAS kernel by
// scripts/test_kernels.sh), a resume with another seed is refused, and the device path (forced
// on the CPU) trains as the CPU path does.
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

// Training on the device path (batched backbone, ATen boxes and resizes, batched CAMs: what CUDA
// runs) forced on the CPU follows the CPU path. One step from the same weights, with static
// pseudo-labels, after the dynamic-CAM switch, and after the prediction-target switch: the losses
// and the weights within the fixture's normalised error (1e-4). Longer runs are not compared: the
// box threshold quantises CAMs to 1/255 steps, so a 1e-6 difference can move a box edge and a few
// pseudo-label pixels, and the paths then drift apart by an amount no fixture bound covers
// (docs/numerics.md gives the drift measured over six steps).
TEST(TrainerTest, device_path_steps_match_the_cpu_path) {
  const std::string dir = test::temp_dir("device_path");
  const train::TrainConfig base = tiny_setup(dir);
  auto run = [&](Kernels k, train::TrainConfig c, const std::string& name,
                 std::vector<std::pair<double, double>>* log) {
    test::ScopedKernels path(k);
    c.output_dir = dir + "/" + name;
    c.loss_log = log;
    train::run_training(c);
    return read_params(c.output_dir + "/checkpoint.h5");
  };
  auto norm_err = [](const at::Tensor& a, const at::Tensor& b) {
    return (a - b).abs().max().item<double>() / std::max(1.0, a.abs().max().item<double>());
  };
  auto loss_err = [](const std::vector<std::pair<double, double>>& a, const std::vector<std::pair<double, double>>& b) {
    EXPECT_EQ(a.size(), b.size());
    double worst = 0;
    for (size_t i = 0; i < std::min(a.size(), b.size()); ++i)
      worst = std::max({worst, std::abs(a[i].first - b[i].first) / std::max(1.0, std::abs(a[i].first)),
                        std::abs(a[i].second - b[i].second) / std::max(1.0, std::abs(a[i].second))});
    return worst;
  };
  struct Case {
    const char* name;
    int64_t iters, switch_iter, pred_target_iter;
    double bound;
  };
  for (const Case& k : {Case{"static", 1, 3, 5, 1e-4}, Case{"dynamic", 1, 0, 5, 1e-4},
                        Case{"prediction_target", 1, 0, 0, 1e-4}}) {
    train::TrainConfig c = base;
    c.max_iters = k.iters;
    c.switch_iter = k.switch_iter;
    c.pred_target_iter = k.pred_target_iter;
    c.eval_every = k.iters;  // the validation at the end runs on each path too
    std::vector<std::pair<double, double>> cpu_log, dev_log;
    auto a = run(Kernels::kBlas, c, std::string("cpu_") + k.name, &cpu_log);
    auto b = run(Kernels::kTorch, c, std::string("dev_") + k.name, &dev_log);
    ASSERT_EQ(a.size(), b.size());
    double worst = 0;
    for (const auto& kv : a) worst = std::max(worst, norm_err(kv.second, b.at(kv.first)));
    const double losses = loss_err(cpu_log, dev_log);
    EXPECT_LE(worst, k.bound) << k.name;
    EXPECT_LE(losses, k.bound) << k.name;
    test::report_equivalence(std::string("device path vs CPU path (") + k.name + "), weights", worst, k.bound);
    test::report_equivalence(std::string("device path vs CPU path (") + k.name + "), losses", losses, k.bound);
  }
}
