// Collective operations between data-parallel ranks, in place on contiguous tensors of any
// device. The MPI implementation works over a private duplicate of the given communicator;
// device tensors go through a pinned host copy (one copy each way). Not thread-safe.
#pragma once
#include <mpi.h>

#include <ATen/core/Tensor.h>

#include <memory>
#include <string>

namespace excel::comm {

// A sum in flight. test() lets it progress (Open MPI advances non-blocking collectives only inside
// MPI calls) and says whether it is done; wait() completes it. Destruction waits.
class PendingSum {
 public:
  virtual ~PendingSum() = default;
  virtual bool test() = 0;
  virtual void wait() = 0;
};

class Communicator {
 public:
  virtual ~Communicator() = default;
  virtual int rank() const = 0;
  virtual int size() const = 0;
  virtual const char* backend_name() const = 0;
  virtual void all_reduce_sum(at::Tensor& t) = 0;  // in place, contiguous
  virtual void broadcast(at::Tensor& t, int root) = 0;
  virtual void barrier() = 0;
  // Starts an in-place sum and returns while it runs where the backend can (MPI_Iallreduce, or
  // NCCL on its stream); `t` must stay untouched until wait(), after which work issued on the
  // device's default stream sees the sum. Default: the blocking sum, already done on return.
  virtual std::unique_ptr<PendingSum> all_reduce_sum_async(at::Tensor& t);
  // A communicator over the same ranks whose collectives never interleave with this one's
  // (MPI: a duplicate), or nullptr when the backend has none (then share this one).
  virtual std::unique_ptr<Communicator> duplicate() const { return nullptr; }
};

class MpiCommunicator : public Communicator {
 public:
  explicit MpiCommunicator(MPI_Comm base = MPI_COMM_WORLD);
  ~MpiCommunicator() override;
  int rank() const override { return rank_; }
  int size() const override { return size_; }
  const char* backend_name() const override { return "mpi"; }
  void all_reduce_sum(at::Tensor& t) override;
  void broadcast(at::Tensor& t, int root) override;
  void barrier() override;
  std::unique_ptr<PendingSum> all_reduce_sum_async(at::Tensor& t) override;
  std::unique_ptr<Communicator> duplicate() const override { return std::make_unique<MpiCommunicator>(comm_); }
  MPI_Comm mpi_comm() const { return comm_; }

 private:
  MPI_Comm comm_;
  int rank_ = 0, size_ = 1;
};

// Call before MPI_Init: makes Open MPI's non-blocking all-reduce (the gradient buckets) use the
// ring algorithm unless the user set OMPI_MCA_coll_libnbc_iallreduce_algorithm. Measured on 2
// ranks and 25 MB: libnbc's default takes 1.7-2.1x a blocking MPI_Allreduce, ring 0.9-1.1x.
void prefer_ring_iallreduce();

// Sum of a tensor over every rank's values, differentiable: the backward pass sums the incoming
// gradient over ranks too (the loss is the sum of the ranks' partial losses). With no
// communicator (or one rank) this is x.sum().
at::Tensor global_sum(const at::Tensor& x, Communicator* comm);
// Element count over all ranks.
int64_t global_count(int64_t local, Communicator* comm);

}  // namespace excel::comm
