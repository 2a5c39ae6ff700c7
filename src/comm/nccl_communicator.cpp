#include "excel/comm/nccl_communicator.h"

#include <cuda_runtime_api.h>
#include <nccl.h>

#include <functional>
#include <stdexcept>

#include "excel/common/errors.h"

namespace excel::comm {
namespace {

std::string where(int rank) {
  return "NCCL communicator, rank " + std::to_string(rank) + ": ";
}

void cuda_check(cudaError_t rc, const char* call, int rank) {
  if (rc != cudaSuccess) throw std::runtime_error(where(rank) + call + " failed: " + cudaGetErrorString(rc));
}

void nccl_check(ncclResult_t rc, const char* call, int rank, ncclComm_t comm = nullptr) {
  if (rc == ncclSuccess) return;
  std::string msg = where(rank) + call + " failed: " + ncclGetErrorString(rc);
#if NCCL_VERSION_CODE >= 21300
  const char* last = comm ? ncclGetLastError(comm) : nullptr;
  if (last && *last) msg += std::string(" (") + last + ")";
#endif
  throw std::runtime_error(msg);
}

ncclDataType_t nccl_type(const at::Tensor& t) {
  switch (t.scalar_type()) {
    case at::kFloat:
      return ncclFloat32;
    case at::kDouble:
      return ncclFloat64;
    case at::kHalf:
      return ncclFloat16;
#if NCCL_VERSION_CODE >= 21000
    case at::kBFloat16:
      return ncclBfloat16;
#endif
    case at::kInt:
      return ncclInt32;
    case at::kLong:
      return ncclInt64;
    case at::kByte:
      return ncclUint8;
    default:
      throw ConfigError("NCCL communicator: unsupported dtype " + std::string(c10::toString(t.scalar_type())));
  }
}

// A CUDA tensor must be on the communicator's device.
void check_on_device(const at::Tensor& t, int rank, int device) {
  if (t.device().index() != device)
    throw ConfigError(where(rank) + "tensor is on cuda:" + std::to_string(t.device().index()) +
                      ", the communicator on cuda:" + std::to_string(device));
}

}  // namespace

// Device resources; released here so that a constructor that throws half-way leaks nothing.
struct NcclCommunicator::State {
  ncclComm_t comm = nullptr;
  cudaStream_t stream = nullptr;
  void* buf = nullptr;  // staging buffer for CPU tensors, grown as needed
  size_t buf_bytes = 0;
  int* flag = nullptr;             // one int for barrier()
  cudaEvent_t produced = nullptr;  // recorded on the default stream before each collective
  void run(at::Tensor& t, int root, int rank, int device);
  // Makes `stream` wait for the work issued so far on the legacy default stream, where LibTorch
  // runs its kernels (we never set a current stream), without blocking the host.
  void follow_default_stream(int rank);
  void check_async(int rank);
  ~State() {  // never throws; errors at teardown are ignored
    if (comm) ncclCommDestroy(comm);
    if (buf) cudaFree(buf);
    if (flag) cudaFree(flag);
    if (produced) cudaEventDestroy(produced);
    if (stream) cudaStreamDestroy(stream);
  }
};

int cuda_device_count(std::string* why) {
  int n = 0;
  cudaError_t rc = cudaGetDeviceCount(&n);
  if (rc != cudaSuccess) {
    cudaGetLastError();  // clear the sticky error
    if (why) *why = std::string("cudaGetDeviceCount: ") + cudaGetErrorString(rc);
    return 0;
  }
  if (n == 0 && why) *why = "no CUDA device visible";
  return n;
}

int64_t cuda_memory_used_bytes() {
  if (cuda_device_count() == 0) return -1;
  size_t free_b = 0, total_b = 0;
  if (cudaMemGetInfo(&free_b, &total_b) != cudaSuccess) {
    cudaGetLastError();
    return -1;
  }
  return static_cast<int64_t>(total_b - free_b);
}

NcclCommunicator::NcclCommunicator(MPI_Comm base) : s_(std::make_unique<State>()) {
  MPI_Comm_rank(base, &rank_);
  MPI_Comm_size(base, &size_);
  MPI_Comm node;
  MPI_Comm_split_type(base, MPI_COMM_TYPE_SHARED, rank_, MPI_INFO_NULL, &node);
  int local_rank = 0;
  MPI_Comm_rank(node, &local_rank);
  MPI_Comm_free(&node);

  // Device, stream and buffers first; all ranks agree on success before NCCL init so that one
  // rank's failure cannot leave the others waiting in ncclCommInitRank.
  std::string error;
  try {
    std::string why;
    const int n = cuda_device_count(&why);
    if (n == 0) throw std::runtime_error(where(rank_) + "no CUDA device (" + why + ")");
    device_ = local_rank % n;
    cuda_check(cudaSetDevice(device_), "cudaSetDevice", rank_);
    cuda_check(cudaStreamCreateWithFlags(&s_->stream, cudaStreamNonBlocking), "cudaStreamCreateWithFlags", rank_);
    cuda_check(cudaMalloc(reinterpret_cast<void**>(&s_->flag), sizeof(int)), "cudaMalloc", rank_);
    cuda_check(cudaEventCreateWithFlags(&s_->produced, cudaEventDisableTiming), "cudaEventCreateWithFlags", rank_);
  } catch (const std::exception& e) {
    error = e.what();
  }
  int first_bad = error.empty() ? size_ : rank_;
  MPI_Allreduce(MPI_IN_PLACE, &first_bad, 1, MPI_INT, MPI_MIN, base);
  if (!error.empty()) throw std::runtime_error(error);
  if (first_bad < size_)
    throw std::runtime_error(where(rank_) + "rank " + std::to_string(first_bad) + " could not set up its CUDA device");

  struct {
    ncclResult_t rc;
    ncclUniqueId id;
  } msg{ncclSuccess, {}};
  if (rank_ == 0) msg.rc = ncclGetUniqueId(&msg.id);
  MPI_Bcast(&msg, sizeof(msg), MPI_BYTE, 0, base);
  nccl_check(msg.rc, "ncclGetUniqueId (on rank 0)", rank_);
  nccl_check(ncclCommInitRank(&s_->comm, size_, msg.id, rank_), "ncclCommInitRank", rank_);
}

NcclCommunicator::~NcclCommunicator() {
  if (device_ >= 0) cudaSetDevice(device_);
  s_.reset();
}

// One event, re-recorded each time: a stream wait binds to the record made before it.
void NcclCommunicator::State::follow_default_stream(int rank) {
  cuda_check(cudaEventRecord(produced, cudaStreamLegacy), "cudaEventRecord", rank);
  cuda_check(cudaStreamWaitEvent(stream, produced, 0), "cudaStreamWaitEvent", rank);
}

void NcclCommunicator::State::check_async(int rank) {
  ncclResult_t async = ncclSuccess;
  nccl_check(ncclCommGetAsyncError(comm, &async), "ncclCommGetAsyncError", rank, comm);
  nccl_check(async, "NCCL collective", rank, comm);
}

// Reduces or broadcasts `t` in place. root < 0: all-reduce sum.
void NcclCommunicator::State::run(at::Tensor& t, int root, int rank, int device) {
  if (!t.is_contiguous()) throw ConfigError(where(rank) + "needs a contiguous tensor");
  const ncclDataType_t type = nccl_type(t);
  const size_t count = static_cast<size_t>(t.numel()), bytes = t.nbytes();
  if (count == 0) return;
  cuda_check(cudaSetDevice(device), "cudaSetDevice", rank);
  auto op = [&](void* p) {
    if (root < 0)
      nccl_check(ncclAllReduce(p, p, count, type, ncclSum, comm, stream), "ncclAllReduce", rank, comm);
    else
      nccl_check(ncclBroadcast(p, p, count, type, root, comm, stream), "ncclBroadcast", rank, comm);
  };
  if (t.is_cuda()) {
    check_on_device(t, rank, device);
    follow_default_stream(rank);
    op(t.data_ptr());
  } else {
    if (bytes > buf_bytes) {
      if (buf) cuda_check(cudaFree(buf), "cudaFree", rank);
      buf = nullptr;
      buf_bytes = 0;
      cuda_check(cudaMalloc(&buf, bytes), "cudaMalloc", rank);
      buf_bytes = bytes;
    }
    if (root < 0 || root == rank)
      cuda_check(cudaMemcpyAsync(buf, t.data_ptr(), bytes, cudaMemcpyHostToDevice, stream), "cudaMemcpyAsync H2D",
                 rank);
    op(buf);
    cuda_check(cudaMemcpyAsync(t.data_ptr(), buf, bytes, cudaMemcpyDeviceToHost, stream), "cudaMemcpyAsync D2H", rank);
  }
  cuda_check(cudaStreamSynchronize(stream), "cudaStreamSynchronize", rank);
  check_async(rank);
}

namespace {

// An NCCL sum in flight on the communicator's stream: `done` is recorded after it. wait() makes
// the default stream wait for `done` (the host does not block); test() asks the event.
class NcclPendingSum : public PendingSum {
 public:
  NcclPendingSum(cudaEvent_t done, int device, std::function<void()> check_async)
      : done_(done), device_(device), check_async_(std::move(check_async)) {}
  ~NcclPendingSum() override {
    // Without wait(), the caller may free the tensor next: let the sum finish first. After it,
    // the default stream is ordered after the sum, which is all the caching allocator needs.
    if (!waited_) cudaEventSynchronize(done_);
    cudaEventDestroy(done_);
  }
  bool test() override {
    const cudaError_t rc = cudaEventQuery(done_);
    if (rc == cudaErrorNotReady) return false;
    if (rc != cudaSuccess)
      throw std::runtime_error(std::string("NCCL sum: cudaEventQuery failed: ") + cudaGetErrorString(rc));
    return true;
  }
  void wait() override {
    cudaError_t rc = cudaSetDevice(device_);
    if (rc == cudaSuccess) rc = cudaStreamWaitEvent(cudaStreamLegacy, done_, 0);
    if (rc != cudaSuccess)
      throw std::runtime_error(std::string("NCCL sum: cudaStreamWaitEvent failed: ") + cudaGetErrorString(rc));
    waited_ = true;
    check_async_();
  }

 private:
  cudaEvent_t done_;
  int device_;
  bool waited_ = false;
  std::function<void()> check_async_;
};

}  // namespace

// CUDA tensors: issued on the stream after the work already queued on the default stream, and
// returned at once. CPU tensors go through the staging buffer synchronously (the default).
std::unique_ptr<PendingSum> NcclCommunicator::all_reduce_sum_async(at::Tensor& t) {
  if (!t.is_cuda() || t.numel() == 0) return Communicator::all_reduce_sum_async(t);
  if (!t.is_contiguous()) throw ConfigError(where(rank_) + "needs a contiguous tensor");
  check_on_device(t, rank_, device_);
  cuda_check(cudaSetDevice(device_), "cudaSetDevice", rank_);
  s_->follow_default_stream(rank_);
  nccl_check(ncclAllReduce(t.data_ptr(), t.data_ptr(), static_cast<size_t>(t.numel()), nccl_type(t), ncclSum, s_->comm,
                           s_->stream),
             "ncclAllReduce", rank_, s_->comm);
  cudaEvent_t done = nullptr;
  cuda_check(cudaEventCreateWithFlags(&done, cudaEventDisableTiming), "cudaEventCreateWithFlags", rank_);
  const cudaError_t rc = cudaEventRecord(done, s_->stream);
  if (rc != cudaSuccess) {
    cudaEventDestroy(done);
    cuda_check(rc, "cudaEventRecord", rank_);
  }
  State* s = s_.get();
  const int rank = rank_;
  return std::make_unique<NcclPendingSum>(done, device_, [s, rank] { s->check_async(rank); });
}

void NcclCommunicator::all_reduce_sum(at::Tensor& t) {
  s_->run(t, -1, rank_, device_);
}

void NcclCommunicator::broadcast(at::Tensor& t, int root) {
  if (root < 0 || root >= size_)
    throw ConfigError(where(rank_) + "broadcast root " + std::to_string(root) + " outside [0, " +
                      std::to_string(size_) + ")");
  s_->run(t, root, rank_, device_);
}

void NcclCommunicator::barrier() {
  cuda_check(cudaSetDevice(device_), "cudaSetDevice", rank_);
  cuda_check(cudaMemsetAsync(s_->flag, 0, sizeof(int), s_->stream), "cudaMemsetAsync", rank_);
  nccl_check(ncclAllReduce(s_->flag, s_->flag, 1, ncclInt32, ncclSum, s_->comm, s_->stream), "ncclAllReduce (barrier)",
             rank_, s_->comm);
  cuda_check(cudaStreamSynchronize(s_->stream), "cudaStreamSynchronize", rank_);
}

}  // namespace excel::comm
