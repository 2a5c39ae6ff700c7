// Gradient synchronisation that overlaps with backward: parameters are packed into buckets
// (reverse registration order, about bucket_bytes each, one device and dtype per bucket;
// assignment fixed at construction, so it never depends on world size or timing). A gradient
// hook copies each gradient into its bucket and a full bucket is summed with the communicator's
// non-blocking sum (MPI_Iallreduce; NCCL on its stream, in place on the device) while backward
// continues, on a duplicate of the communicator where the backend has one. finish() waits for
// every bucket and writes the sums into the parameters' .grad(). Every rank must run the same
// backward graph (collectives are issued in hook order).
#pragma once
#include <ATen/core/Tensor.h>

#include <memory>
#include <vector>

#include "excel/comm/communicator.h"
#include "excel/comm/gradient_sync.h"

namespace excel::comm {

class GradientBucketer : public GradientSync {
 public:
  GradientBucketer(std::vector<at::Tensor> params, Communicator& comm, size_t bucket_bytes = 25u << 20);
  ~GradientBucketer() override;
  GradientBucketer(const GradientBucketer&) = delete;
  GradientBucketer& operator=(const GradientBucketer&) = delete;

  // Call before backward: clears the per-step readiness.
  void begin_step() override;
  // Call after backward: launches what is still pending (parameters without a gradient count as
  // zero), waits, and makes each .grad() a view of its summed bucket slot. The gradients must be
  // reset to none (not zeroed in place) before the next backward.
  void finish() override;
  size_t num_buckets() const { return buckets_.size(); }
  std::vector<int64_t> bucket_numels() const {
    std::vector<int64_t> n;
    for (const auto& b : buckets_) n.push_back(b.buffer.numel());
    return n;
  }

 private:
  struct Bucket {
    std::vector<size_t> params;  // indices into params_
    std::vector<int64_t> offsets;
    at::Tensor buffer;  // flat, the dtype and device of its parameters
    size_t ready = 0;
    bool launched = false;
    std::unique_ptr<PendingSum> pending;
  };
  void on_grad(size_t param, const at::Tensor& grad);
  void launch(Bucket& b);
  void progress();

  std::vector<at::Tensor> params_;
  std::vector<std::pair<size_t, size_t>> where_;  // param -> (bucket, slot)
  std::vector<bool> seen_;
  std::vector<Bucket> buckets_;
  std::unique_ptr<Communicator> own_;  // duplicate for the buckets, when the backend has one
  Communicator* comm_;
};

}  // namespace excel::comm
