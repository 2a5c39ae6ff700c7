// Checks NcclCommunicator on CPU and CUDA tensors (all-reduce sum, asynchronous sum and
// broadcast over dtypes and sizes, exact for integers, within a tolerance for floats), and
// MpiCommunicator on CUDA tensors (through the host); times a float all-reduce of CUDA and of
// CPU tensors beside MPI_Allreduce of the same bytes; and the gradient buckets of CUDA tensors
// over both communicators. Last line: one JSON object. Exit 0 ok, 1 mismatch or error,
// 77 when some rank sees no CUDA device (skip).
//   mpirun -np 2 excel_nccl_check [--bench_bytes=26214400] [--bench_iters=10] [--bench_warmup=3]
#include <gflags/gflags.h>
#include <mpi.h>
#include <torch/torch.h>

#include <chrono>
#include <cstdio>
#include <iostream>
#include <vector>

#include "excel/comm/gradient_bucketer.h"
#include "excel/comm/make_communicator.h"
#include "excel/comm/nccl_communicator.h"
#include "excel/common/tool_flags.h"

DEFINE_int64(bench_bytes, 25 << 20, "bytes of the timed float all-reduce");
EXCEL_FLAG_RULE(bench_bytes, ">= 4", FLAGS_bench_bytes >= 4);
DEFINE_int32(bench_iters, 10, "timed repetitions (mean reported)");
EXCEL_FLAG_RULE(bench_iters, ">= 1", FLAGS_bench_iters >= 1);
DEFINE_int32(bench_warmup, 3, "untimed repetitions first");
EXCEL_FLAG_RULE(bench_warmup, ">= 0", FLAGS_bench_warmup >= 0);

namespace {

using excel::comm::Communicator;

// Small values whose sums are exact in every dtype checked (half and bfloat16 included).
at::Tensor pattern(int64_t n, int rank, at::ScalarType dtype, const at::Device& dev) {
  at::Tensor i = torch::arange(n, torch::kLong);
  return ((i % 5) + rank + 1).to(dtype).to(dev);
}

double tolerance(at::ScalarType dtype) {
  switch (dtype) {
    case at::kHalf:
      return 1e-3;
    case at::kBFloat16:
      return 1e-2;
    case at::kFloat:
      return 1e-6;
    case at::kDouble:
      return 1e-12;
    default:
      return 0;
  }
}

// Mismatches of `got` against `want`, relative for floats and exact for integers.
int64_t mismatches(const at::Tensor& got_any, const at::Tensor& want_any) {
  if (got_any.numel() == 0) return 0;
  at::Tensor got = got_any.cpu(), want = want_any.cpu();
  if (!at::isFloatingType(got.scalar_type())) return (got != want).sum().item<int64_t>();
  at::Tensor g = got.to(torch::kDouble), w = want.to(torch::kDouble);
  return ((g - w).abs() > w.abs() * tolerance(got.scalar_type())).sum().item<int64_t>();
}

// `mpi_types`: the dtypes MPI has (no half or bfloat16).
int64_t check_all(Communicator& comm, const at::Device& dev, bool mpi_types = false) {
  const int rank = comm.rank(), size = comm.size();
  std::vector<at::ScalarType> dtypes = {at::kFloat, at::kDouble, at::kInt, at::kLong, at::kByte};
  if (!mpi_types) dtypes.insert(dtypes.end(), {at::kHalf, at::kBFloat16});
  const std::vector<int64_t> sizes = {0, 1, 7, 4096, 1000003};
  int64_t bad = 0;
  for (at::ScalarType dt : dtypes) {
    for (int64_t n : sizes) {
      // Sum over ranks r of (i % 5 + r + 1) = size * (i % 5 + 1) + size * (size - 1) / 2, wrapping for uint8.
      at::Tensor t = pattern(n, rank, dt, dev), u = pattern(n, rank, dt, dev);
      comm.all_reduce_sum(t);
      comm.all_reduce_sum_async(u)->wait();
      at::Tensor i = torch::arange(n, torch::kLong);
      at::Tensor want = (size * (i % 5 + 1) + size * (size - 1) / 2);
      if (dt == at::kByte) want = want % 256;
      int64_t m = mismatches(t, want.to(dt)) + mismatches(u, want.to(dt));
      for (int root : {0, size - 1}) {
        at::Tensor b = pattern(n, rank, dt, dev);
        comm.broadcast(b, root);
        m += mismatches(b, pattern(n, root, dt, at::kCPU));
      }
      if (m)
        std::cerr << "rank " << rank << ", " << comm.backend_name() << " on " << dev << ": " << c10::toString(dt)
                  << " x " << n << ": " << m << " mismatches\n";
      bad += m;
    }
  }
  comm.barrier();
  return bad;
}

// The trainer's gradient path on the device: buckets of CUDA gradients summed from the backward
// hooks (NCCL on its stream, overlapped with backward), twice, against the sums computed here.
int64_t check_buckets(Communicator& comm, const at::Device& dev) {
  const int rank = comm.rank(), size = comm.size();
  std::vector<at::Tensor> params;
  for (int64_t n : {3, 70000, 5, 300000})
    params.push_back(torch::zeros({n}, torch::kFloat).to(dev).requires_grad_(true));
  excel::comm::GradientBucketer bucketer(params, comm, /*bucket_bytes=*/512 << 10);
  int64_t bad = 0;
  for (int step = 0; step < 2; ++step) {
    for (auto& p : params) p.mutable_grad() = at::Tensor();
    bucketer.begin_step();
    at::Tensor loss = torch::zeros({}, torch::kFloat).to(dev);
    for (size_t k = 0; k < params.size(); ++k) {
      at::Tensor w = pattern(params[k].numel(), static_cast<int>(k), at::kFloat, dev);
      loss = loss + (params[k] * w).sum() * static_cast<float>(rank + 1 + step);
    }
    loss.backward();
    bucketer.finish();
    const float k_sum = size * (size + 1) / 2.0f + size * step;  // sum over ranks of (rank + 1 + step)
    for (size_t k = 0; k < params.size(); ++k)
      bad +=
          mismatches(params[k].grad(), pattern(params[k].numel(), static_cast<int>(k), at::kFloat, at::kCPU) * k_sum);
  }
  if (bad) std::cerr << "rank " << rank << ": gradient buckets on " << dev << ": " << bad << " mismatches\n";
  return bad;
}

template <class F>
double mean_ms(F&& f) {
  for (int k = 0; k < FLAGS_bench_warmup; ++k) f();
  MPI_Barrier(MPI_COMM_WORLD);
  auto t0 = std::chrono::steady_clock::now();
  for (int k = 0; k < FLAGS_bench_iters; ++k) f();
  double ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count() / FLAGS_bench_iters;
  MPI_Allreduce(MPI_IN_PLACE, &ms, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);  // slowest rank
  return ms;
}

}  // namespace

int main(int argc, char** argv) {
  excel::parse_tool_flags(
      &argc, &argv,
      "Checks NcclCommunicator on CPU and CUDA tensors (all-reduce sum, asynchronous sum and broadcast over dtypes and "
      "sizes, exact for integers, within a tolerance for floats), MpiCommunicator on CUDA tensors and the gradient "
      "buckets of CUDA tensors over both, and times a float all-reduce of CUDA and of CPU tensors beside "
      "MPI_Allreduce of the same bytes. Last line: one JSON object. Exit 0 ok, 1 mismatch or error, 77 when some rank "
      "sees no CUDA device (skip). mpirun -np 2 "
      "excel_nccl_check [--bench_bytes=26214400] [--bench_iters=10] [--bench_warmup=3]");
  MPI_Init(&argc, &argv);
  int rank = 0, size = 1;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);

  std::string why;
  int devices = excel::comm::cuda_device_count(&why);
  int min_devices = devices;
  MPI_Allreduce(MPI_IN_PLACE, &min_devices, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
  if (min_devices == 0) {
    if (devices == 0) std::printf("SKIP: rank %d sees no CUDA device (%s)\n", rank, why.c_str());
    MPI_Finalize();
    return 77;
  }

  int code = 0;
  try {
    excel::comm::NcclCommunicator nccl(MPI_COMM_WORLD);
    auto picked = excel::comm::make_communicator("auto");
    excel::comm::MpiCommunicator mpi(MPI_COMM_WORLD);
    const at::Device gpu(at::kCUDA, nccl.device());
    int64_t bad = check_all(nccl, at::kCPU) + check_all(nccl, gpu) + check_all(mpi, gpu, /*mpi_types=*/true) +
                  check_buckets(nccl, gpu) + check_buckets(mpi, gpu);
    if (std::string(picked->backend_name()) != "nccl") {
      std::cerr << "rank " << rank << ": make_communicator(\"auto\") picked " << picked->backend_name() << "\n";
      ++bad;
    }
    MPI_Allreduce(MPI_IN_PLACE, &bad, 1, MPI_INT64_T, MPI_SUM, MPI_COMM_WORLD);

    const int64_t n = std::max<int64_t>(1, FLAGS_bench_bytes / 4);
    at::Tensor x = torch::ones({n}, torch::kFloat), xd = x.to(gpu);
    const double nccl_ms = mean_ms([&] { nccl.all_reduce_sum(x); });
    const double nccl_cuda_ms = mean_ms([&] { nccl.all_reduce_sum(xd); });
    std::vector<float> y(static_cast<size_t>(n), 1.0f);
    const double mpi_ms = mean_ms(
        [&] { MPI_Allreduce(MPI_IN_PLACE, y.data(), static_cast<int>(n), MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD); });
    if (rank == 0) {
      std::printf("devices per node: %d, rank 0 on cuda:%d\n", devices, nccl.device());
      std::printf(
          "{\"ranks\":%d,\"bytes\":%lld,\"nccl_cuda_ms\":%.3f,\"nccl_host_ms\":%.3f,\"mpi_ms\":%.3f,\"ok\":%s}\n", size,
          static_cast<long long>(n * 4), nccl_cuda_ms, nccl_ms, mpi_ms, bad ? "false" : "true");
    }
    code = bad ? 1 : 0;
  } catch (const std::exception& e) {
    std::cerr << "excel_nccl_check: " << e.what() << "\n";
    MPI_Abort(MPI_COMM_WORLD, 1);
  }
  MPI_Finalize();
  return code;
}
