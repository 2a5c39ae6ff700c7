// ExCEL trainer (the iteration of §8.3): plain forward, pseudo-labels (static before the switch,
// dynamic LVC ones after it), losses, PolyWarmupAdamW. Data-parallel over the communicator's
// ranks (one rank without one): each trains its share of the global batch and gradients are
// summed. The backbone runs online on fresh crops (the reference's mode) or its outputs come from
// a feature cache (§11). Every random draw is a function of (seed, iteration, sample), so a
// resumed run is bit-identical to an uninterrupted one on the same ranks and threads (CPU).
#pragma once
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace excel::metrics {
class Metrics;
}
namespace excel::comm {
class Communicator;
}

namespace excel::train {

struct TrainConfig {
  // data
  std::string data_root, train_split = "train_aug", val_split = "val", labels_file, dataset = "voc";
  // model
  std::string clip_checkpoint, bank, bpe_path;
  int64_t crop = 320, adapter_dim = 256, decoder_layers = 3, decoder_heads = 8;
  // schedule (§8.2)
  int64_t batch = 4;  // samples per rank: the global batch is batch x ranks
  int64_t max_iters = 30000, warmup_iters = 50, switch_iter = 14000, pred_target_iter = 24000;
  double base_lr = 1e-4, weight_decay = 1e-2, train_tau = 0.79, val_tau = 0.75;
  uint64_t seed = 0;
  // Dynamic CAM by a second backbone pass as the reference does (true) or by the exact linear
  // update of the plain pass (false, default; docs/algorithm.md §11.2).
  bool dynamic_full_pass = false;
  // Feature cache folder (or its manifest.json): train from it and never build the backbone
  // (validation is skipped).
  std::string cache_dir;
  int64_t cache_budget_mb = 1024;  // decoded samples the prefetch thread may hold
  // Gradient all-reduce bucket size in MB (data-parallel runs), buckets summed from the backward
  // hooks; 0: one bucket per parameter; < 0: one flat all-reduce of all gradients after backward.
  int64_t comm_bucket_mb = 4;
  // Online mode: an unreadable image is counted and replaced by the next one in list order
  // instead of ending the run.
  bool skip_bad_inputs = false;
  // Online mode: batches decoded and augmented ahead on a worker thread (0: on the training
  // thread, step by step).
  int64_t data_prefetch = 2;
  // Augmented views cycled per epoch (view = epoch % views); 0: a fresh view every epoch
  // (online) or all the cache holds.
  int64_t views = 0;
  // Fault injection for tests: rank `fault_nan_rank` gets a NaN loss at iteration fault_nan_step.
  int64_t fault_nan_step = -1;
  int fault_nan_rank = 0;
  // ... and rank `fault_hang_rank` hangs (sleeps forever) before backward at fault_hang_step.
  int64_t fault_hang_step = -1;
  int fault_hang_rank = 0;
  // No progress on any rank for this long ends the job naming the hung rank (0: off).
  double comm_timeout_s = 600;
  // Optional: every step's (seg, div) loss is appended here (tests, benchmarks).
  std::vector<std::pair<double, double>>* loss_log = nullptr;
  // bookkeeping
  std::string output_dir = "run";
  std::string resume;  // checkpoint path, "auto" (output_dir/checkpoint.h5 if present) or ""
  int64_t log_every = 20, eval_every = 2000, ckpt_every = 2000, val_limit = 0;
  int64_t stop_after = 0;  // stop (as if interrupted) after this many iterations of this run
};

struct TrainSummary {
  int64_t iterations_done = 0;  // global iteration reached
  double first_seg_loss = 0, last_seg_loss = 0, first_div_loss = 0, last_div_loss = 0;
  double last_pseudo_miou = -1, last_seg_miou = -1, first_seg_miou = -1;
  double first_agree_miou = -1, last_agree_miou = -1;  // segmentation vs pseudo-labels on val
  double mean_step_seconds = 0;                        // training steps only (no validation, no checkpoint)
  double data_wait_share = 0;                          // share of step time spent waiting for inputs
  double grad_sync_share = 0;                          // share spent in gradient sync not hidden by backward
  int64_t skipped_steps = 0;                           // steps with a non-finite loss or gradient on some rank
  double first_train_agree_miou = -1, last_train_agree_miou = -1;  // same, on training crops (first/last log interval)
};

// With a communicator of N ranks every rank trains on its part of each global batch; batch-global
// statistics and loss normalisers span all ranks and gradients are summed, so the weights equal a
// one-rank run with the same global batch (up to float reduction order).
TrainSummary run_training(const TrainConfig& cfg, metrics::Metrics* metrics = nullptr,
                          comm::Communicator* comm = nullptr);

}  // namespace excel::train
