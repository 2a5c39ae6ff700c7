#include "step_inputs.h"

#include "batch_prefetch.h"

#include <glog/logging.h>
#include <torch/torch.h>

#include <filesystem>

#include "excel/common/errors.h"
#include "excel/common/timing.h"
#include "excel/data/sampler.h"
#include "excel/model/cam.h"
#include "excel/model/placement.h"
#include "excel/model/pseudo_label.h"

namespace excel::train {

OnlineInputs::OnlineInputs(const TrainConfig& cfg, const data::VocLayoutDataset& set, const model::ClipVision& vision,
                           at::Tensor text_features, int64_t num_classes, TrainMetrics& tm,
                           std::function<BatchPlan(int64_t)> planner)
    : cfg_(cfg),
      set_(set),
      vision_(vision),
      text_(std::move(text_features)),
      C_(num_classes),
      g_(cfg.crop / vision.config().patch),
      tm_(tm),
      planner_(std::move(planner)) {
  if (cfg.data_prefetch > 0)
    prefetch_ = std::make_unique<BatchPrefetcher>([this](const BatchPlan& p) { return prepare(p); },
                                                  cfg.data_prefetch);
}

OnlineInputs::~OnlineInputs() = default;

at::Tensor stack_host(const std::vector<at::Tensor>& ts, int64_t dim) {
  if (!model::device().is_cuda()) return torch::stack(ts, dim);
  std::vector<int64_t> sizes = ts.at(0).sizes().vec();
  sizes.insert(sizes.begin() + dim, static_cast<int64_t>(ts.size()));
  at::Tensor out = at::empty(sizes, ts[0].options().pinned_memory(true));
  return at::stack_out(out, ts, dim);
}

at::Tensor to_device(const at::Tensor& host) { return host.to(model::device(), /*non_blocking=*/true); }

// One augmented sample; with --data_skip_bad an unreadable image is counted and replaced by the
// next readable one in list order (deterministic), otherwise it is an error naming the file.
data::TrainSample OnlineInputs::sample(int64_t i, int64_t view, const data::AugmentOptions& aug) {
  const int64_t n = static_cast<int64_t>(set_.size());
  for (int64_t attempt = 0;; ++attempt) {
    const size_t k = static_cast<size_t>((i + attempt) % n);
    try {
      data::TrainSample s = set_.train_sample(k, cfg_.seed, static_cast<uint64_t>(view), aug);
      std::error_code ec;
      const auto bytes = std::filesystem::file_size(set_.image_path(k), ec);
      if (!ec) tm_.bytes_read(static_cast<double>(bytes));
      return s;
    } catch (const InputError& e) {
      if (!cfg_.skip_bad_inputs || attempt + 1 >= std::min<int64_t>(n, 16)) throw;
      tm_.bad_input();
      LOG(WARNING) << "skipped a bad input: " << e.what();
    }
  }
}

HostBatch OnlineInputs::prepare(const BatchPlan& plan) {
  data::AugmentOptions aug;
  aug.crop = cfg_.crop;
  aug.gt_guided_crop = cfg_.dataset == "voc";
  std::vector<at::Tensor> xs, ys;
  for (int64_t i : plan.samples) {
    data::TrainSample s = sample(i, plan.view, aug);
    xs.push_back(s.image);
    ys.push_back(s.cls);
  }
  return {stack_host(xs), stack_host(ys)};
}

StepInputs OnlineInputs::load(const BatchPlan& plan) {
  const auto t_data = Clock::now();
  HostBatch host = prefetch_ ? prefetch_->take(plan) : prepare(plan);
  data_s_ = seconds_since(t_data);  // with prefetch: only the wait for the worker
  if (prefetch_) prefetch_->schedule_after(plan, cfg_.max_iters, planner_);
  StepInputs in;
  in.x = to_device(host.x);  // one copy of the batch to the device
  in.labels = to_device(host.labels);
  model::VisionOptions opt;
  opt.keep_value_proj = plan.dynamic && !cfg_.dynamic_full_pass;
  model::VisionOutputs vo = vision_.forward(in.x, {}, opt);
  in.feats = vo.feats_all;
  in.surgery = vo.surgery;
  if (vo.value_proj.defined()) in.u_patch = vo.value_proj.slice(1, 1);
  in.par = model::denormalize_for_par(in.x);
  at::Tensor cam = plan.dynamic ? at::Tensor() : model::surgery_cam(vo.features, text_, C_);
  std::vector<at::Tensor> sel, pl;
  for (int64_t b = 0; b < in.x.size(0); ++b) {
    model::AttentionAggregates agg = model::attention_aggregates(vo.attn_all.select(1, b));
    sel.push_back(agg.selected);
    if (!plan.dynamic) {
      auto refined = model::refine_cams_with_matrix(cam[b], agg.mean, in.labels[b], cfg_.train_tau, g_, g_);
      pl.push_back(model::pseudo_label(refined, in.par[b].unsqueeze(0), cfg_.crop, cfg_.crop));
    }
  }
  in.attn_sel = torch::stack(sel);
  if (!plan.dynamic) in.static_labels = torch::stack(pl);
  return in;
}

CachedInputs::CachedInputs(const TrainConfig& cfg, const cache::FeatureStore& store, int world, int rank,
                           TrainMetrics& tm)
    : cfg_(cfg), store_(store), world_(world), rank_(rank), tm_(tm) {}

StepInputs CachedInputs::load(const BatchPlan& plan) {
  const auto t_data = Clock::now();
  if (!prefetch_ || prefetch_epoch_ != plan.epoch || next_index_ != plan.index) {
    // Schedule the rest of this epoch's rows on the prefetch thread.
    std::vector<std::pair<int64_t, int64_t>> rows;
    const int64_t global = cfg_.batch * world_;
    for (int64_t b = plan.index; b < store_.num_samples() / global; ++b)
      for (int64_t i : data::rank_batch(*plan.order, b, cfg_.batch, world_, rank_)) rows.emplace_back(i, plan.view);
    prefetch_.reset();
    prefetch_ = std::make_unique<cache::CachePrefetcher>(store_, std::move(rows),
                                                         static_cast<uint64_t>(cfg_.cache_budget_mb) << 20,
                                                         cache::RowPrecision::kStored);
    prefetch_epoch_ = plan.epoch;
  }
  next_index_ = plan.index + 1;
  // Rows stay in the cache's dtype (fp16/bf16: half the bytes of fp32) and labels and crops in
  // uint8 through the host stacking and the one copy; they become float32 on the device.
  // Widening fp16/bf16 to fp32 is exact, so this is bit-identical to converting on the host.
  std::vector<at::Tensor> feats, labels, statics, surgery, u, sel, crops;
  for (size_t k = 0; k < plan.samples.size(); ++k) {
    cache::CachedSample c = prefetch_->next();
    feats.push_back(c.feats);
    labels.push_back(c.labels);
    statics.push_back(c.static_label);
    const int64_t s_entry = c.feats.size(0) - model::ClipVision::kSurgeryBlocks - 1;  // aliasing: §1.8, quirk 2 (§12.2)
    surgery.push_back(torch::cat({c.cls_row.unsqueeze(0), c.feats[s_entry]}, 0));
    u.push_back(c.value_proj);
    sel.push_back(c.attn_sel);
    crops.push_back(c.crop);
  }
  auto to_float = [](const std::vector<at::Tensor>& rows, int64_t dim = 0) {
    return to_device(stack_host(rows, dim)).to(torch::kFloat);
  };
  StepInputs in;  // one copy of each stacked field to the device
  in.feats = to_float(feats, 1);
  in.patch_rows = true;
  in.labels = to_float(labels);
  in.static_labels = to_device(stack_host(statics)).to(torch::kLong);
  in.surgery = to_float(surgery);
  in.u_patch = to_float(u);
  in.attn_sel = to_float(sel);
  in.par = to_float(crops) / 255.0f;
  tm_.bytes_read(static_cast<double>(store_.bytes_read() - bytes_seen_));
  bytes_seen_ = store_.bytes_read();
  data_s_ = seconds_since(t_data);
  return in;
}

}  // namespace excel::train
