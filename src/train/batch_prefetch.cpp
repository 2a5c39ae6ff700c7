#include "batch_prefetch.h"

#include <ATen/Parallel.h>

#include <utility>

namespace excel::train {

BatchPrefetcher::BatchPrefetcher(Prepare prepare, int64_t depth)
    : prepare_(std::move(prepare)),
      depth_(depth),
      // The worker uses the training thread's intra-op thread count (--threads), not OpenMP's
      // default for a new thread (all CPUs), which would oversubscribe ranks sharing a host.
      thread_([this, threads = at::get_num_threads()] {
        at::set_num_threads(threads);
        run();
      }) {}

BatchPrefetcher::~BatchPrefetcher() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

void BatchPrefetcher::schedule_after(const BatchPlan& plan, int64_t end,
                                     const std::function<BatchPlan(int64_t)>& next) {
  int64_t it;
  {
    std::lock_guard<std::mutex> lock(mu_);
    it = queue_.empty() ? plan.iteration + 1 : queue_.back().plan.iteration + 1;
  }
  for (; it < end && it <= plan.iteration + depth_; ++it) {
    Slot s;
    s.plan = next(it);  // planned on this thread: the worker only prepares
    s.plan.order = nullptr;
    {
      std::lock_guard<std::mutex> lock(mu_);
      s.id = next_id_++;
      queue_.push_back(std::move(s));
    }
    cv_.notify_all();
  }
}

HostBatch BatchPrefetcher::take(const BatchPlan& plan) {
  std::unique_lock<std::mutex> lock(mu_);
  if (queue_.empty() || queue_.front().plan.iteration != plan.iteration ||
      queue_.front().plan.samples != plan.samples || queue_.front().plan.view != plan.view) {
    queue_.clear();  // not what was scheduled: drop the look-ahead (a slot being prepared is discarded)
    lock.unlock();
    return prepare_(plan);
  }
  cv_.wait(lock, [&] { return queue_.front().done; });
  Slot s = std::move(queue_.front());
  queue_.pop_front();
  lock.unlock();
  if (s.error) std::rethrow_exception(s.error);
  return std::move(s.batch);
}

void BatchPrefetcher::run() {
  std::unique_lock<std::mutex> lock(mu_);
  for (;;) {
    Slot* todo = nullptr;
    cv_.wait(lock, [&] {
      if (stop_) return true;
      for (Slot& s : queue_)
        if (!s.started) return (todo = &s), true;
      return false;
    });
    if (stop_) return;
    todo->started = true;
    const BatchPlan plan = todo->plan;
    const uint64_t id = todo->id;
    lock.unlock();
    HostBatch b;
    std::exception_ptr error;
    try {
      b = prepare_(plan);
    } catch (...) {
      error = std::current_exception();
    }
    lock.lock();
    for (Slot& s : queue_)
      if (s.id == id) {
        s.batch = std::move(b);
        s.error = error;
        s.done = true;
      }
    cv_.notify_all();
  }
}

}  // namespace excel::train
