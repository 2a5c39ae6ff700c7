// One online training step at ViT-B/16 size (random weights, batch 4, 320x320), split into
// backbone, pseudo-labels, heads forward+backward and optimiser: before the dynamic-CAM switch,
// after it with the exact linear update (§11.2), and after it with the reference's second
// backbone pass. Per mode: images/s and the device memory in use (CUDA builds); then images/s of
// the after-switch step at the largest batch that fits (doubling from --train_batch until the
// device runs out of memory, within --bench_max_batch_s). Last line: one JSON object.
#include <gflags/gflags.h>
#include <glog/logging.h>
#include <torch/cuda.h>
#include <torch/torch.h>

#include <chrono>
#include <iostream>
#include <sstream>

#include "excel/comm/make_communicator.h"
#include "excel/common/blas.h"
#include "excel/common/logging.h"
#include "excel/common/process.h"
#include "excel/common/tool_flags.h"
#include "excel/model/cam.h"
#include "excel/model/clip_vision.h"
#include "excel/model/heads.h"
#include "excel/model/placement.h"
#include "excel/model/pseudo_label.h"
#include "excel/model/random_clip.h"
#include "excel/train/losses.h"
#include "excel/train/optimizer.h"

DEFINE_int32(train_batch, 4, "samples per step");
EXCEL_FLAG_RULE(train_batch, ">= 1", FLAGS_train_batch >= 1);
DEFINE_int32(model_crop, 320, "network input side");
EXCEL_FLAG_RULE(model_crop, "a positive multiple of 16 (ViT-B/16's patch)",
                FLAGS_model_crop >= 16 && FLAGS_model_crop % 16 == 0);
DEFINE_int32(bench_iters, 2, "timed steps per mode (after one warm-up)");
EXCEL_FLAG_RULE(bench_iters, ">= 1", FLAGS_bench_iters >= 1);
DEFINE_double(bench_max_batch_s, 0,
              "seconds for the largest-batch search; a doubling that would not fit is not tried (0: skip it)");
EXCEL_FLAG_RULE(bench_max_batch_s, ">= 0", FLAGS_bench_max_batch_s >= 0);
DEFINE_int32(bench_max_batch, 4096, "largest batch the search tries");
EXCEL_FLAG_RULE(bench_max_batch, ">= 1", FLAGS_bench_max_batch >= 1);
DEFINE_int32(threads, 0, "intra-op threads (0: the cores of this machine)");
EXCEL_FLAG_RULE(threads, ">= 0", FLAGS_threads >= 0);

namespace {
using Clock = std::chrono::steady_clock;
double since(Clock::time_point t) {
  if (excel::model::placement().cuda) torch::cuda::synchronize();  // the split's work, not its launch
  return std::chrono::duration<double>(Clock::now() - t).count() * 1e3;
}
struct Split {
  double backbone = 0, dynamic = 0, pseudo = 0, heads = 0, optim = 0, total = 0;
};
// Device memory in use (all processes; the caching allocator keeps what it once took, so after a
// step this is its high-water mark plus the CUDA context), in MB; -1 without CUDA support.
double device_mb() {
  const int64_t b = excel::comm::gpu_memory_used_bytes();
  return b < 0 ? -1.0 : static_cast<double>(b) / 1e6;
}
bool out_of_memory(const std::exception& e) {
  const std::string m = e.what();
  return m.find("out of memory") != std::string::npos || m.find("ALLOC_FAILED") != std::string::npos;  // cuBLAS, cuDNN
}
}  // namespace

int main(int argc, char** argv) {
  excel::parse_tool_flags(
      &argc, &argv,
      "One online training step at ViT-B/16 size (random weights, batch 4, 320x320), split into backbone, "
      "pseudo-labels, heads forward+backward and optimiser: before the dynamic-CAM switch, after it with the exact "
      "linear update (§11.2), and after it with the reference's second backbone pass. Last line: one JSON object.");
  excel::init_logging(argv[0]);
  excel::configure_process(FLAGS_threads);
  using namespace excel;
  model::use_device_flags_or_exit("excel_bench_train", launcher_local_rank());
  const at::Device dev = model::device();
  model::ClipConfig cfg = model::vit_b16_config();
  model::ClipWeights w = model::random_clip_weights(cfg, 0);
  model::place_clip_weights(w);
  const int64_t B = FLAGS_train_batch, S = FLAGS_model_crop, g = S / cfg.patch, C = 20;
  model::ClipVision vision(w, g);
  model::HeadsConfig hc;
  model::Heads heads(hc, 0);
  heads.to(dev);
  train::PolyWarmupAdamW opt(heads.parameters(), train::OptimizerConfig());
  torch::manual_seed(1);
  at::Tensor text = torch::randn({45, cfg.embed_dim});
  text = (text / text.norm(2, {1}, true)).to(dev);
  at::Tensor x, labels;
  auto make_batch = [&](int64_t n) {
    x = torch::randn({n, 3, S, S});
    labels = torch::zeros({n, C});
    for (int64_t b = 0; b < n; ++b) labels[b][b % C] = labels[b][(3 * b + 5) % C] = 1;
    x = x.to(dev);  // drawn on the CPU, as every random draw
    labels = labels.to(dev);
  };
  make_batch(B);
  at::Tensor radius = model::radius_mask(g, g, 8, dev);

  auto step = [&](bool dynamic, bool full_pass) {
    Split s;
    auto t0 = Clock::now(), t = t0;
    model::VisionOptions plain;
    plain.keep_value_proj = dynamic && !full_pass;
    model::VisionOutputs vo = vision.forward(x, {}, plain);
    at::Tensor cam = model::surgery_cam(vo.features, text, C);
    s.backbone = since(t);
    t = Clock::now();
    model::HeadsOutput ho = heads.forward(vo.feats_all, true, {}, g, g);
    double heads_fwd = since(t);
    if (dynamic) {
      t = Clock::now();
      at::Tensor E = model::lvc_extra_attention(ho.features);
      model::VisionOptions vopt;
      vopt.keep_attn = vopt.keep_feats = false;
      at::Tensor f =
          full_pass ? vision.forward(x, E, vopt).features : vision.dynamic_features(vo.surgery, vo.value_proj, E);
      cam = model::surgery_cam(f, text, C);
      s.dynamic = since(t);
    }
    t = Clock::now();
    at::Tensor par = model::denormalize_for_par(x), P = ho.affinity.detach();
    std::vector<at::Tensor> pl;
    for (int64_t b = 0; b < x.size(0); ++b) {
      auto r = model::refine_cams_with_affinity(cam[b], vo.attn_all.select(1, b), labels[b],
                                                dynamic ? P[b] : at::Tensor(), 0.79, g, g);
      pl.push_back(model::pseudo_label(r, par[b].unsqueeze(0), S, S));
    }
    at::Tensor Y = torch::stack(pl);
    s.pseudo = since(t);
    t = Clock::now();
    at::Tensor loss = train::segmentation_loss(ho.logits, Y) +
                      0.1 * train::diversity_loss(ho.affinity, model::affinity_labels(Y, radius, g, g));
    opt.zero_grad();
    loss.backward();
    s.heads = heads_fwd + since(t);
    t = Clock::now();
    opt.step();
    s.optim = since(t);
    s.total = since(t0);
    return s;
  };

  std::cout << "compute: " << excel::compute_summary() << std::endl;
  std::ostringstream json;
  json << "{\"bench\":\"train_step\",\"model\":\"ViT-B/16\",\"device\":\"" << model::placement().name()
       << "\",\"precision\":\"" << precision_name(model::placement().precision) << "\",\"batch\":" << B
       << ",\"size\":" << S << ",\"threads\":" << torch::get_num_threads() << ",\"blas\":\"" << excel::compute_summary()
       << "\"";
  const std::vector<std::pair<const char*, std::pair<bool, bool>>> modes = {
      {"static", {false, false}}, {"dynamic_linear", {true, false}}, {"dynamic_full_pass", {true, true}}};
  for (const auto& mode : modes) {
    const bool dynamic = mode.second.first, full = mode.second.second;
    step(dynamic, full);
    Split best;
    best.total = 1e30;
    for (int i = 0; i < FLAGS_bench_iters; ++i) {
      Split s = step(dynamic, full);
      if (s.total < best.total) best = s;
    }
    const char* key = mode.first;
    const double mb = device_mb();
    std::cout << key << ": " << best.total << " ms/step = backbone " << best.backbone << " + dynamic CAM "
              << best.dynamic << " + pseudo-labels " << best.pseudo << " + heads fwd/bwd " << best.heads
              << " + optimizer " << best.optim << "; " << B * 1e3 / best.total << " images/s, device memory " << mb
              << " MB" << std::endl;
    json << ",\"" << key << "\":{\"ms_per_step\":" << best.total << ",\"images_per_s\":" << B * 1e3 / best.total
         << ",\"device_mb\":" << mb << ",\"backbone_ms\":" << best.backbone << ",\"dynamic_cam_ms\":" << best.dynamic
         << ",\"pseudo_label_ms\":" << best.pseudo << ",\"heads_fwd_bwd_ms\":" << best.heads
         << ",\"optimizer_ms\":" << best.optim << "}";
  }
  // The largest batch that fits (the after-switch step, whose memory is the larger): doubling until
  // the device runs out of memory, the time is spent, or --bench_max_batch.
  if (FLAGS_bench_max_batch_s > 0) {
    const auto t_search = Clock::now();
    int64_t fit = 0;
    double fit_ms = 0, fit_mb = -1;
    std::string stop = "time";
    for (int64_t n = B; n <= FLAGS_bench_max_batch; n *= 2) {
      const auto t_n = Clock::now();
      try {
        make_batch(n);
        step(true, false);
        Split s = step(true, false);
        fit = n;
        fit_ms = s.total;
        fit_mb = device_mb();
        std::cout << "batch " << n << ": " << s.total << " ms/step, " << n * 1e3 / s.total << " images/s" << std::endl;
      } catch (const std::exception& e) {
        if (!out_of_memory(e)) throw;
        stop = "out of memory at batch " + std::to_string(n);
        break;
      }
      if (2 * n > FLAGS_bench_max_batch) stop = "--bench_max_batch";
      // The next batch would take about twice as long as this one: stop unless that fits too.
      const double elapsed = std::chrono::duration<double>(Clock::now() - t_search).count();
      if (2 * n <= FLAGS_bench_max_batch &&
          elapsed + 2 * std::chrono::duration<double>(Clock::now() - t_n).count() > FLAGS_bench_max_batch_s) {
        stop = "time";
        break;
      }
    }
    x = labels = at::Tensor();
    const double fit_ips = fit > 0 ? fit * 1e3 / fit_ms : 0.0;
    std::cout << "largest batch: " << fit << " (stopped by " << stop << "), " << fit_ips << " images/s" << std::endl;
    json << ",\"largest_batch\":{\"batch\":" << fit << ",\"images_per_s\":" << fit_ips << ",\"device_mb\":" << fit_mb
         << ",\"stopped_by\":\"" << stop << "\"}";
  }
  json << "}";
  std::cout << json.str() << std::endl;
  return 0;
}
