// train/trainer (src/train/trainer.cpp, with the training checkpoint of src/train/checkpoint.cpp):
// the single-process trainer on synthetic data with a tiny random CLIP; resume after a stop is
// bit-identical to an uninterrupted run (an equivalence rerun per OpenBLAS kernel by
// scripts/test_kernels.sh), a resume with another seed is refused, and the device path (forced
// on the CPU) trains as the CPU path does; batches prepared ahead on the prefetch thread give the
// weights and errors of the serial load.
#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <fstream>

#include "excel/common/errors.h"
#include "excel/data/sampler.h"
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

namespace {
// Whether every parameter of two checkpoints is bitwise equal.
void expect_same_weights(const std::string& a_ckpt, const std::string& b_ckpt, const std::string& what) {
  auto a = read_params(a_ckpt), b = read_params(b_ckpt);
  ASSERT_EQ(a.size(), b.size());
  ASSERT_GT(a.size(), 0u);
  double worst = 0;
  for (const auto& kv : a) {
    EXPECT_TRUE(torch::equal(kv.second, b.at(kv.first))) << what << ": " << kv.first;
    worst = std::max(worst, (kv.second - b.at(kv.first)).abs().max().item<double>());
  }
  test::report_equivalence(what, worst, 0);
}
}  // namespace

// The online batches decoded and augmented ahead (--data_prefetch=2, and 1) train the weights of
// the serial load, across the dynamic-CAM switch and an epoch boundary (10 images, batch 2: five
// steps an epoch); a resume with prefetch is also bit-identical.
TEST(TrainerTest, prefetched_batches_give_the_serial_weights) {
  const std::string dir = test::temp_dir("prefetch");
  train::TrainConfig cfg = tiny_setup(dir);
  cfg.data_prefetch = 0;
  cfg.output_dir = dir + "/serial";
  train::TrainSummary serial = train::run_training(cfg);
  EXPECT_EQ(serial.iterations_done, 6);
  for (int64_t depth : {2, 1}) {
    cfg.data_prefetch = depth;
    cfg.output_dir = dir + "/prefetch" + std::to_string(depth);
    train::TrainSummary s = train::run_training(cfg);
    EXPECT_EQ(s.iterations_done, 6);
    expect_same_weights(dir + "/serial/checkpoint.h5", cfg.output_dir + "/checkpoint.h5",
                        "online weights, prefetch " + std::to_string(depth) + " vs 0");
    std::cout << "data wait share: prefetch 0 " << serial.data_wait_share << ", prefetch " << depth << " "
              << s.data_wait_share << "\n";
  }
  cfg.data_prefetch = 2;
  cfg.output_dir = dir + "/resumed";
  cfg.stop_after = 4;
  EXPECT_EQ(train::run_training(cfg).iterations_done, 4);
  cfg.stop_after = 0;
  cfg.resume = "auto";
  EXPECT_EQ(train::run_training(cfg).iterations_done, 6);
  expect_same_weights(dir + "/serial/checkpoint.h5", dir + "/resumed/checkpoint.h5",
                      "online weights, prefetch 2 resumed vs prefetch 0");
}

// An unreadable image met by the prefetch thread (one of step 2's: step 0 is loaded on the training
// thread) ends the run on the training thread with the serial load's error; with skip_bad_inputs
// both replace it by the same image.
TEST(TrainerTest, prefetch_thread_errors_reach_the_training_thread) {
  const std::string dir = test::temp_dir("prefetch_bad");
  train::TrainConfig cfg = tiny_setup(dir);
  std::ifstream list(dir + "/voc/ImageSets/Segmentation/train.txt");
  std::vector<std::string> ids;
  for (std::string id; list >> id;) ids.push_back(id);
  ASSERT_GT(ids.size(), 6u);
  const auto order = data::epoch_permutation(static_cast<int64_t>(ids.size()), cfg.seed, 0);
  const std::string last = ids.at(static_cast<size_t>(data::rank_batch(order, 2, cfg.batch, 1, 0).at(0)));
  std::ofstream(dir + "/voc/JPEGImages/" + last + ".jpg") << "not a JPEG";
  auto message = [&](int64_t depth) {
    train::TrainConfig c = cfg;
    c.data_prefetch = depth;
    c.output_dir = dir + "/fail" + std::to_string(depth);
    try {
      train::run_training(c);
    } catch (const InputError& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  const std::string serial = message(0);
  EXPECT_NE(serial.find(last + ".jpg"), std::string::npos) << serial;
  EXPECT_EQ(message(2), serial);
  cfg.skip_bad_inputs = true;
  for (int64_t depth : {0, 2}) {
    cfg.data_prefetch = depth;
    cfg.output_dir = dir + "/skip" + std::to_string(depth);
    EXPECT_EQ(train::run_training(cfg).iterations_done, 6);
  }
  expect_same_weights(dir + "/skip0/checkpoint.h5", dir + "/skip2/checkpoint.h5",
                      "online weights skipping a bad image, prefetch 2 vs 0");
}
