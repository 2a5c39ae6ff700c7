// Gradient synchronisation that overlaps with backward: parameters are packed into buckets
// (reverse registration order, about bucket_bytes each; assignment fixed at construction, so it
// never depends on world size or timing). A gradient hook copies each gradient into its bucket
// and a full bucket is summed with a non-blocking MPI_Iallreduce while backward continues.
// finish() waits for every bucket and writes the sums into the parameters' .grad().
// Every rank must run the same backward graph (collectives are issued in hook order).
#pragma once
#include <mpi.h>

#include <ATen/core/Tensor.h>

#include <vector>

namespace excel::comm {

class GradientBucketer {
 public:
  GradientBucketer(std::vector<at::Tensor> params, MPI_Comm comm, size_t bucket_bytes = 25u << 20);
  ~GradientBucketer();
  GradientBucketer(const GradientBucketer&) = delete;
  GradientBucketer& operator=(const GradientBucketer&) = delete;

  // Call before backward: clears the per-step readiness.
  void prepare();
  // Call after backward: launches what is still pending (parameters without a gradient count as
  // zero), waits, and makes each .grad() a view of its summed bucket slot. The gradients must be
  // reset to none (not zeroed in place) before the next backward.
  void finish();
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
    at::Tensor buffer;           // flat float32
    size_t ready = 0;
    bool launched = false;
    MPI_Request request = MPI_REQUEST_NULL;
  };
  void on_grad(size_t param, const at::Tensor& grad);
  void launch(Bucket& b);
  void progress();

  std::vector<at::Tensor> params_;
  std::vector<std::pair<size_t, size_t>> where_;  // param -> (bucket, slot)
  std::vector<bool> seen_;
  std::vector<Bucket> buckets_;
  MPI_Comm comm_;
};

}  // namespace excel::comm
