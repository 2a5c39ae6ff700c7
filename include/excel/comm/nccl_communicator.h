// NCCL collectives between ranks, one CUDA device per rank (built only with EXCEL_WITH_CUDA).
// CUDA tensors are reduced in place on the device, on the communicator's own stream after the
// work queued on the default stream (where LibTorch runs); CPU tensors (always the case with a
// CPU LibTorch) are staged through a cached device buffer. all_reduce_sum_async on a CUDA tensor
// returns at once (the gradient buckets); every other call returns once the result is in `t`.
// CUDA and NCCL types stay out of this header. Not thread-safe.
#pragma once
#include <mpi.h>

#include <cstdint>
#include <memory>
#include <string>

#include "excel/comm/communicator.h"

namespace excel::comm {

class NcclCommunicator : public Communicator {
 public:
  // Collective over `base`: picks the device (node-local rank modulo the device count), shares
  // rank 0's ncclUniqueId over MPI and initialises NCCL. Throws on every rank if a rank has no device.
  explicit NcclCommunicator(MPI_Comm base = MPI_COMM_WORLD);
  ~NcclCommunicator() override;
  NcclCommunicator(const NcclCommunicator&) = delete;
  NcclCommunicator& operator=(const NcclCommunicator&) = delete;

  int rank() const override { return rank_; }
  int size() const override { return size_; }
  const char* backend_name() const override { return "nccl"; }
  void all_reduce_sum(at::Tensor& t) override;
  std::unique_ptr<PendingSum> all_reduce_sum_async(at::Tensor& t) override;
  void broadcast(at::Tensor& t, int root) override;
  void barrier() override;
  int device() const { return device_; }

 private:
  struct State;
  std::unique_ptr<State> s_;
  int rank_ = 0, size_ = 1, device_ = -1;
};

// Number of CUDA devices this process sees; 0 (with the reason in *why) when there is no
// device or no driver. Never throws.
int cuda_device_count(std::string* why = nullptr);
// Memory in use on the current device (all processes), -1 without a device. Never throws.
int64_t cuda_memory_used_bytes();

}  // namespace excel::comm
