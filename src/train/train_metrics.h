// The trainer's Prometheus series (phase "train"), created once; every method is a no-op
// without a registry.
#pragma once
#include <chrono>

#include "excel/metrics/metrics.h"

namespace excel::train {

// Seconds spent in each part of one step.
struct StepTimes {
  double data = 0, forward = 0, backward = 0, allreduce = 0, optimizer = 0;
};

class TrainMetrics {
 public:
  explicit TrainMetrics(metrics::Metrics* mx, int64_t max_iters) : mx_(mx) {
    if (!mx) return;
    const auto b = metrics::seconds_buckets();
    steps_ = &mx->counter("excel_train_steps_total", "Optimiser steps taken");
    samples_ = &mx->counter("excel_train_samples_total", "Training samples processed by this rank");
    skipped_ = &mx->counter("excel_train_skipped_steps_total", "Steps skipped for a non-finite loss or gradient");
    read_bytes_ = &mx->counter("excel_data_read_bytes_total", "Bytes read from image files or cache shards");
    bad_inputs_ = &mx->counter("excel_bad_inputs_total", "Unreadable training inputs skipped");
    step_s_ = &mx->histogram("excel_train_step_seconds", "Wall time of one training step", b);
    data_s_ = &mx->histogram("excel_train_data_wait_seconds", "Time a step waited for its inputs", b);
    fwd_s_ = &mx->histogram("excel_train_forward_seconds", "Backbone, heads, pseudo-labels and losses", b);
    bwd_s_ = &mx->histogram("excel_train_backward_seconds", "Backward pass", b);
    ar_s_ = &mx->histogram("excel_train_allreduce_seconds", "Gradient all-reduce time not hidden by backward", b);
    opt_s_ = &mx->histogram("excel_train_optimizer_seconds", "Optimiser update", b);
    ckpt_s_ = &mx->histogram("excel_train_checkpoint_seconds", "Checkpoint write (rank 0) and barrier", b);
    seg_ = &mx->gauge("excel_train_loss", "Loss of the last step", {{"term", "seg"}});
    div_ = &mx->gauge("excel_train_loss", "Loss of the last step", {{"term", "diversity"}});
    total_ = &mx->gauge("excel_train_loss", "Loss of the last step", {{"term", "total"}});
    lr_ = &mx->gauge("excel_train_learning_rate", "Learning rate of the heads' parameter group");
    epoch_ = &mx->gauge("excel_train_epoch", "Epoch of the last step");
    iter_ = &mx->gauge("excel_train_iteration", "Global iteration reached");
    mx->gauge("excel_train_max_iterations", "Iterations of the schedule").Set(static_cast<double>(max_iters));
    last_ = &mx->gauge("excel_train_last_step_timestamp_seconds", "Unix time of the last finished step");
    agree_ = &mx->gauge("excel_train_seg_vs_pseudo_label_miou_ratio",
                        "mIoU of segmentation predictions against the pseudo-labels (last log interval)");
  }

  void step(double seconds, const StepTimes& t, int64_t samples, int64_t iteration, int64_t epoch, double lr) {
    if (!steps_) return;
    step_s_->Observe(seconds);
    data_s_->Observe(t.data);
    fwd_s_->Observe(t.forward);
    bwd_s_->Observe(t.backward);
    ar_s_->Observe(t.allreduce);
    opt_s_->Observe(t.optimizer);
    steps_->Increment();
    samples_->Increment(static_cast<double>(samples));
    iter_->Set(static_cast<double>(iteration));
    epoch_->Set(static_cast<double>(epoch));
    lr_->Set(lr);
    last_->Set(std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count());
  }
  // Non-finite values are exported as they are (NaN), which the "loss not finite" alert sees.
  void losses(double seg, double div, double total) {
    if (!seg_) return;
    seg_->Set(seg);
    div_->Set(div);
    total_->Set(total);
  }
  void skipped() {
    if (skipped_) skipped_->Increment();
  }
  void bad_input() {
    if (bad_inputs_) bad_inputs_->Increment();
  }
  void bytes_read(double b) {
    if (read_bytes_ && b > 0) read_bytes_->Increment(b);
  }
  void checkpoint(double seconds) {
    if (ckpt_s_) ckpt_s_->Observe(seconds);
  }
  void agreement(double miou) {
    if (agree_) agree_->Set(miou);
  }
  // Created at the first validation (rank 0 only), so no series exists before there is a value.
  void validation(double pseudo_label_miou, double seg_miou) {
    if (!mx_) return;
    if (!val_pl_) {
      val_pl_ = &mx_->gauge("excel_val_miou_ratio", "mIoU on the validation split", {{"kind", "pseudo_label"}});
      val_seg_ = &mx_->gauge("excel_val_miou_ratio", "mIoU on the validation split", {{"kind", "segmentation"}});
    }
    val_pl_->Set(pseudo_label_miou);
    val_seg_->Set(seg_miou);
  }

 private:
  metrics::Metrics* mx_;
  prometheus::Counter *steps_ = nullptr, *samples_ = nullptr, *skipped_ = nullptr, *read_bytes_ = nullptr,
                      *bad_inputs_ = nullptr;
  prometheus::Histogram *step_s_ = nullptr, *data_s_ = nullptr, *fwd_s_ = nullptr, *bwd_s_ = nullptr, *ar_s_ = nullptr,
                        *opt_s_ = nullptr, *ckpt_s_ = nullptr;
  prometheus::Gauge *seg_ = nullptr, *div_ = nullptr, *total_ = nullptr, *lr_ = nullptr, *epoch_ = nullptr,
                    *iter_ = nullptr, *last_ = nullptr, *agree_ = nullptr, *val_pl_ = nullptr, *val_seg_ = nullptr;
};

}  // namespace excel::train
