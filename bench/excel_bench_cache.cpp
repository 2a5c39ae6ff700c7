// Feature-cache figures at ViT-B/16 size (random weights, synthetic images): precompute crops/s
// on one rank, bytes per cached row for the chosen dtype, reader samples/s and MB/s beside a raw
// sequential read of the same files, and the training step from the cache beside the online step
// (before and after the dynamic-CAM switch) with its images/s, the shares of step time spent
// waiting for data and in gradient sync, and the device memory in use (CUDA builds). A one-step run
// first warms the device (CUDA context, library handles). Last line: one JSON object.
#include <gflags/gflags.h>
#include <glog/logging.h>
#include <torch/torch.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <random>
#include <sstream>

#include "excel/cache/feature_store.h"
#include "excel/cache/precompute.h"
#include "excel/comm/make_communicator.h"
#include "excel/common/blas.h"
#include "excel/common/logging.h"
#include "excel/common/process.h"
#include "excel/common/timing.h"
#include "excel/common/tool_flags.h"
#include "excel/data/synthetic_voc.h"
#include "excel/model/clip_checkpoint.h"
#include "excel/model/placement.h"
#include "excel/model/random_clip.h"
#include "excel/model/tokenizer.h"
#include "excel/train/trainer.h"

DEFINE_int32(bench_images, 8, "synthetic images to cache");
EXCEL_FLAG_RULE(bench_images, ">= 1", FLAGS_bench_images >= 1);
DEFINE_int32(model_crop, 320, "network input side");
EXCEL_FLAG_RULE(model_crop, "a positive multiple of 16 (ViT-B/16's patch)",
                FLAGS_model_crop >= 16 && FLAGS_model_crop % 16 == 0);
DEFINE_string(cache_dtype, "fp16", "storage dtype of the cached features");
EXCEL_FLAG_RULE(cache_dtype, "fp32, fp16 or bf16", excel::flag_one_of(FLAGS_cache_dtype, {"fp32", "fp16", "bf16"}));
DEFINE_int32(bench_iters, 2, "timed training steps per mode");
EXCEL_FLAG_RULE(bench_iters, ">= 1", FLAGS_bench_iters >= 1);
DEFINE_string(model_bank, "", "ViT-B/16 attribute bank .h5 (the authors' voc_attribute_bank_vitb16.h5)");
EXCEL_FLAG_RULE(model_bank, "an attribute bank .h5 (required)", !FLAGS_model_bank.empty());
DEFINE_string(model_bpe, "",
              "BPE merge list of the prompts (default: model::default_bpe_path); the random CLIP's text "
              "vocabulary follows it (build_bpe_vocab makes a small one)");
DEFINE_string(bench_work_dir, "/tmp/excel_bench_cache", "scratch folder (removed at the end)");
EXCEL_FLAG_RULE(bench_work_dir, "a folder (not empty)", !FLAGS_bench_work_dir.empty());
DEFINE_int32(threads, 0, "intra-op threads (0: the cores of this machine)");
EXCEL_FLAG_RULE(threads, ">= 0", FLAGS_threads >= 0);

namespace fs = std::filesystem;
using excel::Clock;
using excel::seconds_since;

int main(int argc, char** argv) {
  excel::parse_tool_flags(&argc, &argv,
                          "Feature-cache figures at ViT-B/16 size (random weights, synthetic images): precompute "
                          "crops/s on one rank, bytes per cached row for the chosen dtype, reader samples/s and MB/s "
                          "beside a raw sequential read of the same files, and the training step from the cache beside "
                          "the online step (before and after the dynamic-CAM switch). Last line: one JSON object.");
  excel::init_logging(argv[0]);
  excel::configure_process(FLAGS_threads);
  using namespace excel;
  model::use_device_flags_or_exit("excel_bench_cache", launcher_local_rank());  // precompute and training follow it
  const std::string bank = FLAGS_model_bank;
  if (bank.empty() || !fs::is_regular_file(bank)) {
    std::cerr << "excel_bench_cache: --model_bank must name a ViT-B/16 attribute bank .h5 (given: '" << bank << "')\n";
    return 2;
  }
  model::ClipConfig cfg = model::vit_b16_config();
  const std::string bpe = FLAGS_model_bpe.empty() ? model::default_bpe_path() : FLAGS_model_bpe;
  try {
    cfg.vocab_size = model::Tokenizer(bpe).vocab_size();
  } catch (const std::exception& e) {
    std::cerr << "excel_bench_cache: --model_bpe: " << e.what() << "\n";
    return 2;
  }
  const std::string dir = FLAGS_bench_work_dir;
  fs::remove_all(dir);
  data::make_synthetic_voc({dir + "/voc", FLAGS_bench_images + 2, 300, 500, 2.0 / (FLAGS_bench_images + 2), 0});
  model::save_clip_checkpoint(model::random_clip_tensors(cfg, 0, torch::kHalf), cfg, dir + "/clip.pt",
                              model::CheckpointFormat::kStateDict);

  cache::CacheConfig cc;
  cc.data_root = dir + "/voc";
  cc.split = "train";
  cc.clip_checkpoint = dir + "/clip.pt";
  cc.bank = bank;
  cc.bpe_path = bpe;
  cc.cache_dir = dir + "/cache";
  cc.crop = FLAGS_model_crop;
  cc.views = 1;
  cc.dtype = FLAGS_cache_dtype;
  auto t = Clock::now();
  cache::ShardInfo shard = cache::precompute_shard(cc, 0, 1);
  const double pre_s = seconds_since(t);
  cache::write_manifest(cc, {shard});
  const std::string shard_path = cc.cache_dir + "/" + shard.file;
  const double bytes_per_row = static_cast<double>(fs::file_size(shard_path)) / static_cast<double>(shard.rows);

  // Reader: every row in a random order, then a raw sequential read of the same file.
  cache::FeatureStore store(cc.cache_dir);
  std::vector<int64_t> order(static_cast<size_t>(store.num_samples()));
  std::iota(order.begin(), order.end(), 0);
  std::shuffle(order.begin(), order.end(), std::mt19937(1));
  t = Clock::now();
  for (int64_t i : order) store.read(i, 0);
  const double read_s = seconds_since(t);
  const double read_mb = static_cast<double>(fs::file_size(shard_path)) / 1e6;
  t = Clock::now();
  {
    std::ifstream in(shard_path, std::ios::binary);
    std::vector<char> buf(8 << 20);
    while (in.read(buf.data(), static_cast<std::streamsize>(buf.size())) || in.gcount() > 0) {
    }
  }
  const double raw_s = seconds_since(t);

  // Training steps, online and from the cache, before and after the switch.
  train::TrainConfig tc;
  tc.data_root = cc.data_root;
  tc.train_split = "train";
  tc.val_split = "val";
  tc.clip_checkpoint = cc.clip_checkpoint;
  tc.bank = bank;
  tc.bpe_path = bpe;
  tc.crop = FLAGS_model_crop;
  tc.batch = std::min(4, FLAGS_bench_images);
  tc.max_iters = FLAGS_bench_iters;
  tc.eval_every = tc.ckpt_every = 1 << 30;
  tc.val_limit = 1;
  tc.views = 1;
  {
    train::TrainConfig c = tc;
    c.max_iters = 1;
    c.output_dir = dir + "/warmup";
    train::run_training(c);
  }
  const char* names[2][2] = {{"online", "online_after_switch"}, {"cached", "cached_after_switch"}};
  double step_s[2][2];
  std::ostringstream runs;
  for (int cached = 0; cached < 2; ++cached) {
    for (int phase = 0; phase < 2; ++phase) {
      train::TrainConfig c = tc;
      c.switch_iter = phase == 0 ? 1 << 30 : 0;
      c.cache_dir = cached ? cc.cache_dir : "";
      c.output_dir = dir + "/run" + std::to_string(cached) + std::to_string(phase);
      const train::TrainSummary r = train::run_training(c);
      step_s[cached][phase] = r.mean_step_seconds;
      const int64_t used = comm::gpu_memory_used_bytes();  // the caching allocator's high-water mark + context
      const double mb = used < 0 ? -1.0 : static_cast<double>(used) / 1e6;
      std::cout << names[cached][phase] << ": " << r.mean_step_seconds << " s/step, " << tc.batch / r.mean_step_seconds
                << " images/s, data wait " << 100 * r.data_wait_share << "%, gradient sync " << 100 * r.grad_sync_share
                << "%, device memory " << mb << " MB\n";
      runs << ",\"" << names[cached][phase] << "\":{\"step_s\":" << r.mean_step_seconds
           << ",\"images_per_s\":" << tc.batch / r.mean_step_seconds << ",\"data_wait_share\":" << r.data_wait_share
           << ",\"grad_sync_share\":" << r.grad_sync_share << ",\"device_mb\":" << mb << "}";
    }
  }
  fs::remove_all(dir);
  std::cout << "compute: " << compute_summary() << "\n"
            << "precompute: " << shard.rows / pre_s << " crops/s on one rank (" << FLAGS_model_crop
            << " px, ViT-B/16)\n"
            << "cache row: " << bytes_per_row << " bytes (" << FLAGS_cache_dtype << ")\n"
            << "reader: " << store.num_samples() / read_s << " samples/s, " << read_mb / read_s
            << " MB/s (random order); raw sequential read " << read_mb / raw_s << " MB/s\n"
            << "train step (batch " << tc.batch << "): online " << step_s[0][0] << " s / cached " << step_s[1][0]
            << " s before the switch, online " << step_s[0][1] << " s / cached " << step_s[1][1] << " s after\n";
  std::cout << "{\"bench\":\"cache\",\"device\":\"" << model::placement().name() << "\",\"precision\":\""
            << precision_name(model::placement().precision) << "\",\"blas\":\"" << compute_summary()
            << "\",\"size\":" << FLAGS_model_crop << ",\"dtype\":\"" << FLAGS_cache_dtype
            << "\",\"precompute_crops_per_s_per_rank\":" << shard.rows / pre_s << ",\"bytes_per_row\":" << bytes_per_row
            << ",\"reader_samples_per_s\":" << store.num_samples() / read_s
            << ",\"reader_mb_per_s\":" << read_mb / read_s << ",\"raw_read_mb_per_s\":" << read_mb / raw_s
            << ",\"batch\":" << tc.batch << ",\"online_step_s\":" << step_s[0][0]
            << ",\"cached_step_s\":" << step_s[1][0] << ",\"online_step_after_switch_s\":" << step_s[0][1]
            << ",\"cached_step_after_switch_s\":" << step_s[1][1] << ",\"speedup\":" << step_s[0][0] / step_s[1][0]
            << ",\"speedup_after_switch\":" << step_s[0][1] / step_s[1][1] << runs.str() << "}" << std::endl;
  return 0;
}
