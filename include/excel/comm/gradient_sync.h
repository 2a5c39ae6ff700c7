// Gradient synchronisation between data-parallel ranks, behind one interface: begin_step()
// before backward, finish() after it; then every parameter's .grad() holds the sum over ranks
// (a parameter without a gradient counts as zero). Every rank must run the same backward graph.
#pragma once
#include <ATen/core/Tensor.h>

#include <cstdint>
#include <memory>
#include <vector>

namespace excel::comm {

class Communicator;

class GradientSync {
 public:
  virtual ~GradientSync() = default;
  virtual void begin_step() = 0;
  virtual void finish() = 0;
};

// One flat buffer of every gradient (one per device and dtype), summed after backward (no overlap).
class FlatGradientSync : public GradientSync {
 public:
  FlatGradientSync(std::vector<at::Tensor> params, Communicator& comm) : params_(std::move(params)), comm_(comm) {}
  void begin_step() override {}
  void finish() override;

 private:
  std::vector<at::Tensor> params_;
  Communicator& comm_;
};

// bucket_mb >= 0: GradientBucketer (buckets of about bucket_mb MB summed from the backward hooks,
// overlapped with backward; 0 = one bucket per parameter); < 0: FlatGradientSync.
std::unique_ptr<GradientSync> make_gradient_sync(std::vector<at::Tensor> params, Communicator& comm, int64_t bucket_mb);

}  // namespace excel::comm
