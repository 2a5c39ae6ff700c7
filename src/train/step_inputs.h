// What one training step needs from the frozen backbone, and the two places it comes from: a
// backbone pass over freshly augmented crops (online, the reference's mode) or rows of the
// feature cache (the backbone is never built).
#pragma once
#include <ATen/core/Tensor.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include "excel/cache/feature_store.h"
#include "excel/data/voc_layout_dataset.h"
#include "excel/model/clip_vision.h"
#include "excel/train/trainer.h"
#include "train_metrics.h"

namespace excel::train {

struct StepInputs {
  at::Tensor feats;  // [L,B,N,W] online, [L,B,P,W] cached (patch rows)
  bool patch_rows = false;
  at::Tensor labels;         // [B,C] float
  at::Tensor static_labels;  // [B,S,S] long (before the dynamic-CAM switch)
  at::Tensor surgery;        // [B,N,W] final surgery tokens (after the switch)
  at::Tensor u_patch;        // [B,P,W] value projection U, patch rows (after the switch)
  at::Tensor attn_sel;       // [B,P,P] G-independent selected attention (after the switch)
  at::Tensor par;            // [B,3,S,S] PAR image in [0,1]
  at::Tensor x;              // online only: the normalised crops
};

// This rank's share of one global step.
struct BatchPlan {
  std::vector<int64_t> samples;                 // sample indices
  const std::vector<int64_t>* order = nullptr;  // the epoch's permutation (cache read-ahead)
  int64_t iteration = 0;                        // global step
  int64_t epoch = 0, index = 0, view = 0;       // index: batch within the epoch
  bool dynamic = false;                         // after the dynamic-CAM switch
};

// Stacks host tensors, into pinned memory when the model runs on CUDA (to_device then copies
// without blocking); on the CPU a plain stack.
at::Tensor stack_host(const std::vector<at::Tensor>& ts, int64_t dim = 0);
at::Tensor to_device(const at::Tensor& host);

class InputProvider {
 public:
  virtual ~InputProvider() = default;
  virtual StepInputs load(const BatchPlan& plan) = 0;
  // Seconds of the last load() spent waiting for data (reading, decoding, augmenting).
  double data_seconds() const { return data_s_; }

 protected:
  double data_s_ = 0;
};

struct HostBatch;
class BatchPrefetcher;

// Decodes and augments each sample (seeded by seed, sample, view) and runs the backbone; before the
// switch also the static pseudo-label, exactly as excel_precompute stores it. With
// cfg.data_prefetch > 0 the crops of the next steps (planner(it) gives step it's plan) are
// prepared on a worker thread while this step runs.
class OnlineInputs : public InputProvider {
 public:
  OnlineInputs(const TrainConfig& cfg, const data::VocLayoutDataset& set, const model::ClipVision& vision,
               at::Tensor text_features, int64_t num_classes, TrainMetrics& tm,
               std::function<BatchPlan(int64_t)> planner);
  ~OnlineInputs() override;
  StepInputs load(const BatchPlan& plan) override;

 private:
  HostBatch prepare(const BatchPlan& plan);  // decode and augment (the worker's part)
  data::TrainSample sample(int64_t i, int64_t view, const data::AugmentOptions& aug);
  const TrainConfig& cfg_;
  const data::VocLayoutDataset& set_;
  const model::ClipVision& vision_;
  at::Tensor text_;
  int64_t C_, g_;
  TrainMetrics& tm_;
  std::function<BatchPlan(int64_t)> planner_;
  std::unique_ptr<BatchPrefetcher> prefetch_;  // last member: its worker stops before the rest goes
};

// Rows of the feature cache, read ahead for the rest of the epoch on a background thread.
class CachedInputs : public InputProvider {
 public:
  CachedInputs(const TrainConfig& cfg, const cache::FeatureStore& store, int world, int rank, TrainMetrics& tm);
  StepInputs load(const BatchPlan& plan) override;

 private:
  const TrainConfig& cfg_;
  const cache::FeatureStore& store_;
  int world_, rank_;
  TrainMetrics& tm_;
  std::unique_ptr<cache::CachePrefetcher> prefetch_;
  int64_t prefetch_epoch_ = -1, next_index_ = -1;
  uint64_t bytes_seen_ = 0;
};

}  // namespace excel::train
