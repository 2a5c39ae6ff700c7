// Data-parallel training under real mpirun ranks (run by ctest with `mpirun -np 2`).
#include <glog/logging.h>
#include <gtest/gtest.h>
#include <mpi.h>
#include <torch/torch.h>

#include <cstring>
#include <filesystem>

#include "excel/comm/communicator.h"
#include "excel/common/h5.h"
#include "excel/data/synthetic_voc.h"
#include "excel/model/checkpoint.h"
#include "excel/model/random_clip.h"
#include "excel/model/tse.h"
#include "excel/stages/stage_dump.h"
#include "excel/train/trainer.h"

using namespace excel;

namespace {

std::string shared_dir(const std::string& tag) {  // one temporary folder, named by rank 0
  char buf[256] = {0};
  int rank = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  if (rank == 0) {
    std::string d = (std::filesystem::temp_directory_path() / ("excel_mpi_" + tag + "_" + std::to_string(::getpid()))).string();
    std::filesystem::create_directories(d);
    std::strncpy(buf, d.c_str(), sizeof(buf) - 1);
  }
  MPI_Bcast(buf, sizeof(buf), MPI_CHAR, 0, MPI_COMM_WORLD);
  return buf;
}

std::map<std::string, at::Tensor> read_params(const std::string& ckpt) {
  h5::File f = h5::File::open(ckpt);
  std::map<std::string, at::Tensor> out;
  for (const auto& n : f.list("params")) out[n] = f.read("params/" + n);
  return out;
}

}  // namespace

// 2 ranks x 2 samples give the weights of 1 rank x 4 samples. Before the dynamic-CAM switch the
// pseudo-labels are fixed per crop and only float reduction order differs. After it, 1e-7
// differences in E can move a PAR argmax or a box threshold by one pixel, which shows as ~1e-5
// loss differences (measured: 2e-5 at the switch, weights 1.3e-4 after 3 more steps).
TEST(DataParallelTest, two_ranks_of_two_match_one_rank_of_four) {
  const std::string bpe = stages::default_bpe_path();
  if (!std::filesystem::exists(bpe)) {
    if (std::getenv("CI") && std::string(std::getenv("CI")) == "true") FAIL() << "CI=true but " << bpe << " is absent";
    GTEST_SKIP() << bpe << " absent";
  }
  int rank = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  const std::string dir = shared_dir("dp");
  train::TrainConfig cfg;
  if (rank == 0) {
    data::make_synthetic_voc({dir + "/voc", 10, 96, 128, 0.2, 1});
    model::ClipConfig c = model::vit_b16_config();
    c.vision_width = 64;
    c.vision_heads = 1;
    c.text_width = 64;
    c.text_heads = 1;
    c.text_layers = 1;
    c.embed_dim = 16;
    model::save_clip_checkpoint(model::random_clip_tensors(c, 2, torch::kHalf), c, dir + "/clip.pt",
                                model::CheckpointFormat::kStateDict);
    torch::manual_seed(3);
    at::Tensor centres = torch::randn({16, 8});
    model::save_attribute_bank({centres / centres.norm(2, {0}, true), torch::ones({20, 8})}, dir + "/bank.h5");
  }
  MPI_Barrier(MPI_COMM_WORLD);
  cfg.data_root = dir + "/voc";
  cfg.train_split = "train";
  cfg.val_split = "val";
  cfg.clip_checkpoint = dir + "/clip.pt";
  cfg.bank = dir + "/bank.h5";
  cfg.bpe_path = bpe;
  cfg.crop = 96;
  cfg.adapter_dim = 16;
  cfg.max_iters = 6;
  cfg.warmup_iters = 2;
  cfg.switch_iter = 1000;
  cfg.pred_target_iter = 1000;
  cfg.eval_every = cfg.ckpt_every = 1000;
  cfg.val_limit = 1;
  cfg.seed = 5;

  comm::MpiCommunicator world(MPI_COMM_WORLD);
  train::TrainConfig two = cfg;
  two.batch = 2;
  two.output_dir = dir + "/two_ranks";
  std::vector<std::pair<double, double>> log2, log1;
  two.loss_log = &log2;
  auto s2 = train::run_training(two, nullptr, &world);

  double worst = -1;
  if (rank == 0) {  // the one-rank reference run with the same global batch
    train::TrainConfig one = cfg;
    one.batch = 4;
    one.output_dir = dir + "/one_rank";
    one.loss_log = &log1;
    auto s1 = train::run_training(one);
    ASSERT_EQ(log1.size(), log2.size());
    for (size_t i = 0; i < log1.size(); ++i) {
      EXPECT_NEAR(log1[i].first, log2[i].first, 1e-5) << "step " << i;
      EXPECT_NEAR(log1[i].second, log2[i].second, 1e-5) << "step " << i;
    }
    EXPECT_NEAR(s1.last_seg_loss, s2.last_seg_loss, 1e-5);
    EXPECT_NEAR(s1.last_div_loss, s2.last_div_loss, 1e-5);
    auto a = read_params(dir + "/one_rank/checkpoint.h5"), b = read_params(dir + "/two_ranks/checkpoint.h5");
    worst = 0;
    for (const auto& kv : a) {
      at::Tensor x = kv.second, y = b.at(kv.first);
      // The key bias of attention has an exactly zero gradient (softmax ignores a per-row
      // constant), so its computed gradient is rounding noise that Adam normalises into
      // +-lr steps: no partition of the batch can agree on it. Every other parameter must.
      if (kv.first.find("attn.in_proj_bias") != std::string::npos) {
        const int64_t D = x.size(0) / 3;
        x = torch::cat({x.slice(0, 0, D), x.slice(0, 2 * D)});
        y = torch::cat({y.slice(0, 0, D), y.slice(0, 2 * D)});
      }
      worst = std::max(worst, (x - y).abs().max().item<double>());
    }
    std::cout << "[dp] max weight difference 1x4 vs 2x2 after 6 steps: " << worst << "\n";
    std::filesystem::remove_all(dir);
  }
  MPI_Bcast(&worst, 1, MPI_DOUBLE, 0, MPI_COMM_WORLD);
  EXPECT_GE(worst, 0.0);
  EXPECT_LE(worst, 1e-5);
}

// A NaN loss on one rank skips that step on every rank, and training goes on.
TEST(DataParallelTest, nan_on_one_rank_skips_the_step_everywhere) {
  const std::string bpe = stages::default_bpe_path();
  if (!std::filesystem::exists(bpe)) GTEST_SKIP() << bpe << " absent";
  int rank = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  const std::string dir = shared_dir("nan");
  if (rank == 0) {
    data::make_synthetic_voc({dir + "/voc", 10, 96, 128, 0.2, 1});
    model::ClipConfig c = model::vit_b16_config();
    c.vision_width = 64;
    c.vision_heads = 1;
    c.text_width = 64;
    c.text_heads = 1;
    c.text_layers = 1;
    c.embed_dim = 16;
    model::save_clip_checkpoint(model::random_clip_tensors(c, 2, torch::kHalf), c, dir + "/clip.pt",
                                model::CheckpointFormat::kStateDict);
    model::save_attribute_bank({torch::randn({16, 8}), torch::ones({20, 8})}, dir + "/bank.h5");
  }
  MPI_Barrier(MPI_COMM_WORLD);
  train::TrainConfig cfg;
  cfg.data_root = dir + "/voc";
  cfg.train_split = "train";
  cfg.val_split = "val";
  cfg.clip_checkpoint = dir + "/clip.pt";
  cfg.bank = dir + "/bank.h5";
  cfg.bpe_path = bpe;
  cfg.crop = 64;
  cfg.adapter_dim = 16;
  cfg.batch = 2;
  cfg.max_iters = 4;
  cfg.eval_every = cfg.ckpt_every = 1000;
  cfg.val_limit = 1;
  cfg.inject_nan_step = 1;
  cfg.inject_nan_rank = 1;
  cfg.output_dir = dir + "/run";
  comm::MpiCommunicator world(MPI_COMM_WORLD);
  auto s = train::run_training(cfg, nullptr, &world);
  EXPECT_EQ(s.skipped_steps, 1);  // on both ranks, including the one without the NaN
  EXPECT_EQ(s.iterations_done, 4);
  EXPECT_TRUE(std::isfinite(s.last_seg_loss));
  MPI_Barrier(MPI_COMM_WORLD);
  if (rank == 0) std::filesystem::remove_all(dir);
}

int main(int argc, char** argv) {
  MPI_Init(&argc, &argv);
  testing::InitGoogleTest(&argc, argv);
  FLAGS_logtostderr = true;
  FLAGS_minloglevel = 1;
  google::InitGoogleLogging(argv[0]);
  int rc = RUN_ALL_TESTS();
  MPI_Finalize();
  return rc;
}
