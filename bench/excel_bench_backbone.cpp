// Surgery-ViT forward throughput at ViT-B/16 size (random weights, every layer's output kept, as
// feature precomputation keeps them) beside the device's matmul rate in the backbone's precision,
// measured in the same run: the MLP GEMM of each batch and a large square GEMM (the card rate).
// Last line: one JSON object.
//   excel_bench_backbone [--bench_batches=4,8] [--model_crop=320] [--bench_iters=3] [--bench_card_gemm=0]
#include <gflags/gflags.h>
#include <glog/logging.h>
#include <torch/cuda.h>
#include <torch/torch.h>

#include <chrono>
#include <iostream>
#include <sstream>

#include "excel/common/blas.h"
#include "excel/common/logging.h"
#include "excel/common/process.h"
#include "excel/common/timing.h"
#include "excel/common/tool_flags.h"
#include "excel/model/clip_vision.h"
#include "excel/model/placement.h"
#include "excel/model/random_clip.h"

DEFINE_string(bench_batches, "4,8", "comma-separated batch sizes");
EXCEL_FLAG_RULE(bench_batches, "comma-separated integers >= 1", excel::flag_int_list(FLAGS_bench_batches, 1));
DEFINE_int32(model_crop, 320, "network input side");
EXCEL_FLAG_RULE(model_crop, "a positive multiple of 16 (ViT-B/16's patch)",
                FLAGS_model_crop >= 16 && FLAGS_model_crop % 16 == 0);
DEFINE_int32(bench_iters, 3, "timed iterations per batch size (after one warm-up)");
EXCEL_FLAG_RULE(bench_iters, ">= 1", FLAGS_bench_iters >= 1);
DEFINE_int32(bench_card_gemm, 0,
             "side of the square GEMM timed as the device's matmul rate (0: 8192 on CUDA, 1024 on the CPU)");
EXCEL_FLAG_RULE(bench_card_gemm, ">= 0", FLAGS_bench_card_gemm >= 0);
DEFINE_int32(threads, 0, "intra-op threads (0: the cores of this machine)");
EXCEL_FLAG_RULE(threads, ">= 0", FLAGS_threads >= 0);

namespace {

// Matmul FLOPs of one surgery forward per image (docs/algorithm.md §1).
double forward_flops(const excel::model::ClipConfig& c, int64_t side) {
  const double g = static_cast<double>(side / c.patch), P = g * g, N = P + 1, W = static_cast<double>(c.vision_width);
  const double D = 64, H = W / D, L = static_cast<double>(c.vision_layers), S = 5;
  double f = 2 * P * W * 3 * c.patch * c.patch;                          // patch embedding
  f += L * (2 * N * W * 3 * W + 2 * N * W * W + 2 * 2 * N * W * 4 * W);  // qkv, out-proj, MLP
  f += L * 2 * (2 * H * N * N * D);                                      // QK^T and AV
  f += S * (3 * 2 * H * N * N * D + 2 * N * N * W + 2 * N * W * W);      // QQ/KK/VV, A V, 2nd out-proj
  f += 2 * N * W * static_cast<double>(c.embed_dim);                     // projection
  return f;
}

void device_sync() {
  if (excel::model::placement().cuda) torch::cuda::synchronize();
}

// Best-of-5 rate of an [m, k] x [k, n] GEMM on the model's device, in the backbone's precision.
double gemm_gflops(int64_t m, int64_t k, int64_t n) {
  const auto o = torch::TensorOptions().device(excel::model::device()).dtype(excel::model::backbone_dtype());
  at::Tensor a = torch::randn({m, k}, o), b = torch::randn({k, n}, o);  // drawn on the device: no copy of 8192^2
  torch::mm(a, b);
  double best = 1e30;
  for (int i = 0; i < 5; ++i) {
    device_sync();
    auto t0 = std::chrono::steady_clock::now();
    at::Tensor c = torch::mm(a, b);
    device_sync();
    best = std::min(best, excel::seconds_since(t0));
  }
  return 2.0 * m * k * n / best / 1e9;
}

}  // namespace

int main(int argc, char** argv) {
  excel::parse_tool_flags(&argc, &argv,
                          "Surgery-ViT forward throughput at ViT-B/16 size (random weights) beside this machine's "
                          "matmul rate in the backbone's precision (the MLP GEMM of each batch and a square GEMM, the "
                          "card rate), measured in the same run. Last line: one JSON object. "
                          "excel_bench_backbone [--bench_batches=4,8] [--model_crop=320] [--bench_iters=3] "
                          "[--bench_card_gemm=0]");
  excel::init_logging(argv[0]);
  excel::configure_process(FLAGS_threads);
  torch::NoGradGuard ng;
  excel::model::ClipConfig cfg = excel::model::vit_b16_config();
  excel::model::use_device_flags_or_exit("excel_bench_backbone", excel::launcher_local_rank());
  excel::model::ClipWeights w = excel::model::random_clip_weights(cfg, 0);
  excel::model::place_clip_weights(w);
  excel::model::ClipVision vit(w, FLAGS_model_crop / cfg.patch);
  const double flops_img = forward_flops(cfg, FLAGS_model_crop);
  const int64_t N = (FLAGS_model_crop / cfg.patch) * (FLAGS_model_crop / cfg.patch) + 1;

  std::cout << "compute: " << excel::compute_summary() << std::endl;
  std::ostringstream json;
  const bool cuda = excel::model::placement().cuda;
  const int64_t card_n = FLAGS_bench_card_gemm > 0 ? FLAGS_bench_card_gemm : (cuda ? 8192 : 1024);
  const double card = gemm_gflops(card_n, card_n, card_n);  // the device's matmul rate in this precision
  std::cout << "card rate: " << card / 1e3 << " TFLOP/s (" << card_n << "^3 GEMM, "
            << excel::precision_name(excel::model::placement().precision)
            << (excel::model::placement().tf32 ? ", TF32" : "") << ")" << std::endl;
  json << "{\"bench\":\"backbone\",\"model\":\"ViT-B/16 surgery\",\"device\":\"" << excel::model::placement().name()
       << "\",\"precision\":\"" << excel::precision_name(excel::model::placement().precision)
       << "\",\"tf32\":" << (excel::model::placement().tf32 ? "true" : "false") << ",\"card_gemm_n\":" << card_n
       << ",\"card_tflops\":" << card / 1e3 << ",\"size\":" << FLAGS_model_crop
       << ",\"threads\":" << torch::get_num_threads() << ",\"blas\":\"" << excel::compute_summary() << "\""
       << ",\"gflop_per_image\":" << flops_img / 1e9 << ",\"runs\":[";
  std::stringstream ss(FLAGS_bench_batches);
  std::string item;
  bool first = true;
  double worst_ratio = 1e9;
  while (std::getline(ss, item, ',')) {
    const int64_t B = std::stoll(item);
    at::Tensor x = torch::randn({B, 3, FLAGS_model_crop, FLAGS_model_crop}).to(excel::model::device());
    vit.forward(x);  // warm-up (full outputs, as feature precomputation keeps them)
    double best = 1e30;
    for (int i = 0; i < FLAGS_bench_iters; ++i) {
      device_sync();
      auto t0 = std::chrono::steady_clock::now();
      auto out = vit.forward(x);
      device_sync();
      best = std::min(best, excel::seconds_since(t0));
    }
    const double achieved = flops_img * B / best / 1e9;
    const double gemm = gemm_gflops(B * N, cfg.vision_width, 4 * cfg.vision_width);
    const double ratio = achieved / gemm;
    worst_ratio = std::min(worst_ratio, ratio);
    std::cout << "batch " << B << ": " << best * 1e3 << " ms/forward, " << B / best << " images/s, " << achieved
              << " GFLOP/s achieved, GEMM " << gemm << " GFLOP/s, ratio " << ratio << ", of the card rate "
              << achieved / card << std::endl;
    json << (first ? "" : ",") << "{\"batch\":" << B << ",\"ms_per_forward\":" << best * 1e3
         << ",\"images_per_s\":" << B / best << ",\"achieved_gflops\":" << achieved << ",\"gemm_gflops\":" << gemm
         << ",\"ratio\":" << ratio << ",\"card_ratio\":" << achieved / card << "}";
    first = false;
  }
  json << "],\"min_ratio\":" << worst_ratio << "}";
  std::cout << json.str() << std::endl;
  return 0;
}
