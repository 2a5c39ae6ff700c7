#include "excel/comm/communicator.h"

#include <torch/torch.h>

#include <cstdlib>

#include "excel/common/errors.h"

namespace excel::comm {
namespace {

MPI_Datatype mpi_type(const at::Tensor& t) {
  switch (t.scalar_type()) {
    case at::kFloat:
      return MPI_FLOAT;
    case at::kDouble:
      return MPI_DOUBLE;
    case at::kLong:
      return MPI_INT64_T;
    case at::kInt:
      return MPI_INT;
    case at::kByte:
      return MPI_UINT8_T;
    default:
      throw ConfigError("MPI communicator: unsupported dtype " + std::string(c10::toString(t.scalar_type())));
  }
}

void check(int rc, const char* what) {
  if (rc != MPI_SUCCESS) {
    char msg[MPI_MAX_ERROR_STRING];
    int len = 0;
    MPI_Error_string(rc, msg, &len);
    throw ConfigError(std::string(what) + " failed: " + std::string(msg, static_cast<size_t>(len)));
  }
}

struct GlobalSum : public torch::autograd::Function<GlobalSum> {
  static at::Tensor forward(torch::autograd::AutogradContext* ctx, at::Tensor x, int64_t comm_ptr) {
    ctx->saved_data["comm"] = comm_ptr;
    ctx->saved_data["shape"] = x.sizes().vec();
    at::Tensor s = x.sum().reshape({1}).contiguous();
    reinterpret_cast<Communicator*>(comm_ptr)->all_reduce_sum(s);
    return s.reshape({});
  }
  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grad) {
    auto* comm = reinterpret_cast<Communicator*>(ctx->saved_data["comm"].toInt());
    at::Tensor g = grad[0].reshape({1}).contiguous().clone();
    comm->all_reduce_sum(g);
    auto shape = ctx->saved_data["shape"].toIntVector();
    return {g.reshape({}).expand(shape), at::Tensor()};
  }
};

class DoneSum : public PendingSum {
 public:
  bool test() override { return true; }
  void wait() override {}
};

// A tensor MPI can read: `t` itself on the CPU, else a host copy of it (pinned, so that the
// copies in and out run at the bus's rate). MPI here is not CUDA-aware: device tensors go
// through the host, one copy each way.
at::Tensor host_view(const at::Tensor& t, bool copy_in) {
  if (t.is_cpu()) return t;
  at::Tensor h = at::empty(t.sizes(), t.options().device(at::kCPU).pinned_memory(true));
  if (copy_in) h.copy_(t);  // blocking: waits for the producer of `t` on its stream
  return h;
}

void copy_back(at::Tensor& t, const at::Tensor& host) {
  if (!host.is_same(t)) t.copy_(host);
}

class MpiPendingSum : public PendingSum {
 public:
  MpiPendingSum(MPI_Request r, at::Tensor target, at::Tensor host)
      : request_(r), target_(std::move(target)), host_(std::move(host)) {}
  ~MpiPendingSum() override {
    if (request_ != MPI_REQUEST_NULL) MPI_Wait(&request_, MPI_STATUS_IGNORE);
    if (!copied_) try {
        copy_back(target_, host_);
      } catch (...) {  // a destructor never throws; wait() reports errors
      }
  }
  bool test() override {
    if (request_ == MPI_REQUEST_NULL) return true;
    int done = 0;
    check(MPI_Test(&request_, &done, MPI_STATUS_IGNORE), "MPI_Test");
    return done != 0;
  }
  void wait() override {
    if (request_ != MPI_REQUEST_NULL) check(MPI_Wait(&request_, MPI_STATUS_IGNORE), "MPI_Wait");
    if (!copied_) copy_back(target_, host_);
    copied_ = true;
  }

 private:
  MPI_Request request_;
  at::Tensor target_, host_;  // the caller's tensor and what MPI reduces (the same on the CPU)
  bool copied_ = false;
};

}  // namespace

std::unique_ptr<PendingSum> Communicator::all_reduce_sum_async(at::Tensor& t) {
  all_reduce_sum(t);
  return std::make_unique<DoneSum>();
}

std::unique_ptr<PendingSum> MpiCommunicator::all_reduce_sum_async(at::Tensor& t) {
  if (size_ == 1) return std::make_unique<DoneSum>();
  TORCH_CHECK(t.is_contiguous(), "all_reduce_sum_async needs a contiguous tensor");
  at::Tensor h = host_view(t, true);
  MPI_Request r = MPI_REQUEST_NULL;
  check(MPI_Iallreduce(MPI_IN_PLACE, h.data_ptr(), static_cast<int>(h.numel()), mpi_type(h), MPI_SUM, comm_, &r),
        "MPI_Iallreduce");
  return std::make_unique<MpiPendingSum>(r, t, h);
}

void prefer_ring_iallreduce() {
  ::setenv("OMPI_MCA_coll_libnbc_iallreduce_algorithm", "1", /*overwrite=*/0);
}

MpiCommunicator::MpiCommunicator(MPI_Comm base) {
  check(MPI_Comm_dup(base, &comm_), "MPI_Comm_dup");
  MPI_Comm_rank(comm_, &rank_);
  MPI_Comm_size(comm_, &size_);
}

MpiCommunicator::~MpiCommunicator() {
  int finalized = 0;
  MPI_Finalized(&finalized);
  if (!finalized) MPI_Comm_free(&comm_);
}

void MpiCommunicator::all_reduce_sum(at::Tensor& t) {
  if (size_ == 1) return;
  TORCH_CHECK(t.is_contiguous(), "all_reduce_sum needs a contiguous tensor");
  at::Tensor h = host_view(t, true);
  check(MPI_Allreduce(MPI_IN_PLACE, h.data_ptr(), static_cast<int>(h.numel()), mpi_type(h), MPI_SUM, comm_),
        "MPI_Allreduce");
  copy_back(t, h);
}

void MpiCommunicator::broadcast(at::Tensor& t, int root) {
  if (size_ == 1) return;
  TORCH_CHECK(t.is_contiguous(), "broadcast needs a contiguous tensor");
  at::Tensor h = host_view(t, rank_ == root);
  check(MPI_Bcast(h.data_ptr(), static_cast<int>(h.numel()), mpi_type(h), root, comm_), "MPI_Bcast");
  copy_back(t, h);
}

void MpiCommunicator::barrier() {
  check(MPI_Barrier(comm_), "MPI_Barrier");
}

at::Tensor global_sum(const at::Tensor& x, Communicator* comm) {
  if (!comm || comm->size() == 1) return x.sum();
  return GlobalSum::apply(x, reinterpret_cast<int64_t>(comm));
}

int64_t global_count(int64_t local, Communicator* comm) {
  if (!comm || comm->size() == 1) return local;
  at::Tensor t = torch::tensor({local}, torch::kLong);
  comm->all_reduce_sum(t);
  return t.item<int64_t>();
}

}  // namespace excel::comm
