// The decoded and augmented crops of upcoming steps, prepared on one worker thread while the
// current step runs (excel_train --data_prefetch batches ahead). Plans are scheduled in step order;
// take() hands back a plan's batch, or prepares it on the calling thread when it was not the next
// scheduled one (the first step, after a resume). A worker's error is rethrown by the take() of the
// plan that raised it, so the training thread sees what a serial load would have thrown.
#pragma once
#include <ATen/core/Tensor.h>

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <exception>
#include <functional>
#include <mutex>
#include <thread>

#include "step_inputs.h"

namespace excel::train {

// One step's crops and labels on the host: pinned memory when the model runs on CUDA.
struct HostBatch {
  at::Tensor x;       // [B,3,S,S] normalised crops
  at::Tensor labels;  // [B,C] float
};

class BatchPrefetcher {
 public:
  using Prepare = std::function<HostBatch(const BatchPlan&)>;
  // prepare must be safe to call from the worker while the training thread runs the step.
  BatchPrefetcher(Prepare prepare, int64_t depth);
  ~BatchPrefetcher();  // stops and joins the worker (a batch being prepared is finished first)
  BatchPrefetcher(const BatchPrefetcher&) = delete;
  BatchPrefetcher& operator=(const BatchPrefetcher&) = delete;

  // Queues the plans of steps after `plan` (next(it) gives step it's plan; steps >= end are not
  // scheduled), keeping `depth` batches ahead.
  void schedule_after(const BatchPlan& plan, int64_t end, const std::function<BatchPlan(int64_t)>& next);
  // The batch of plan (waits for the worker; rethrows its error).
  HostBatch take(const BatchPlan& plan);

 private:
  struct Slot {
    BatchPlan plan;
    uint64_t id = 0;
    bool started = false, done = false;
    HostBatch batch;
    std::exception_ptr error;
  };
  void run();
  Prepare prepare_;
  int64_t depth_;
  std::deque<Slot> queue_;
  uint64_t next_id_ = 0;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  std::thread thread_;
};

}  // namespace excel::train
