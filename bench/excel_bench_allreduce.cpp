// Gradient synchronisation at VOC size (6.3 M head parameters, ViT-B/16 features), run under
// `mpirun -np N`: a raw MPI_Allreduce of all gradient bytes, the heads' forward+backward step
// without communication, the same step with bucketed all-reduce from backward hooks, and the
// communication left exposed after backward. Last line (rank 0): one JSON object.
#include <gflags/gflags.h>
#include <glog/logging.h>
#include <mpi.h>
#include <torch/torch.h>

#include <chrono>
#include <iostream>

#include "excel/comm/communicator.h"
#include "excel/comm/gradient_bucketer.h"
#include "excel/common/blas.h"
#include "excel/common/logging.h"
#include "excel/common/process.h"
#include "excel/common/tool_flags.h"
#include "excel/model/heads.h"
#include "excel/model/placement.h"

DEFINE_int32(train_batch, 2, "samples per rank");
EXCEL_FLAG_RULE(train_batch, ">= 1", FLAGS_train_batch >= 1);
DEFINE_int32(bench_iters, 3, "timed iterations (best of)");
EXCEL_FLAG_RULE(bench_iters, ">= 1", FLAGS_bench_iters >= 1);
DEFINE_int32(comm_bucket_mb, 4, "bucket size in MB (excel_train's default; 0: one per parameter)");
EXCEL_FLAG_RULE(comm_bucket_mb, ">= 0", FLAGS_comm_bucket_mb >= 0);
DEFINE_int32(threads, 0, "intra-op threads per rank (0: the cores of this node / its ranks)");
EXCEL_FLAG_RULE(threads, ">= 0", FLAGS_threads >= 0);

using Clock = std::chrono::steady_clock;
static double ms(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double>(b - a).count() * 1e3;
}

int main(int argc, char** argv) {
  excel::parse_tool_flags(&argc, &argv,
                          "Gradient synchronisation at VOC size (6.3 M head parameters, ViT-B/16 features), run under "
                          "`mpirun -np N`: a raw MPI_Allreduce of all gradient bytes, the heads' forward+backward step "
                          "without communication, the same step with bucketed all-reduce from backward hooks, and the "
                          "communication left exposed after backward. Last line (rank 0): one JSON object.");
  excel::comm::prefer_ring_iallreduce();  // as the tools do (OMPI_MCA_coll_libnbc_iallreduce_algorithm=0 restores the
                                          // default)
  MPI_Init(&argc, &argv);
  int rank = 0, world = 1;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &world);
  excel::init_logging(argv[0], rank);
  const char* ls = std::getenv("OMPI_COMM_WORLD_LOCAL_SIZE");
  excel::configure_process(FLAGS_threads, ls ? std::atoi(ls) : 1);
  // The raw MPI calls and the bucketer below take host buffers: CUDA gradients wait for the
  // communicator's device path (issue 13), so this bench runs on the CPU only.
  if (excel::model::use_device_flags_or_exit("excel_bench_allreduce", excel::launcher_local_rank()).cuda) {
    if (rank == 0)
      std::cerr << "excel_bench_allreduce: --device: the MPI gradient path runs on the CPU only; use --device=cpu\n";
    MPI_Finalize();
    return 2;
  }
  excel::model::HeadsConfig hc;  // VOC: 768 -> 256, 12 layers, 21 classes
  torch::manual_seed(rank);
  at::Tensor feats = torch::randn({12, FLAGS_train_batch, 401, 768});
  auto step = [&](excel::model::Heads& h, excel::comm::GradientBucketer* b, double* exposed) {
    for (auto p : h.parameters()) p.mutable_grad() = at::Tensor();
    if (b) b->begin_step();
    auto out = h.forward(feats, true, {}, 20, 20);
    (out.logits.pow(2).mean() + out.affinity.mean()).backward();
    auto t = Clock::now();
    if (b) b->finish();
    if (exposed) *exposed = ms(t, Clock::now());
  };
  excel::model::Heads plain(hc, 0), synced(hc, 0);
  excel::comm::MpiCommunicator world_comm(MPI_COMM_WORLD);
  excel::comm::GradientBucketer bucketer(synced.parameters(), world_comm,
                                         static_cast<size_t>(FLAGS_comm_bucket_mb) << 20);
  const int64_t n = plain.num_parameters();
  at::Tensor flat = torch::randn({n});
  std::vector<at::Tensor> bufs;
  for (int64_t k : bucketer.bucket_numels()) bufs.push_back(torch::randn({k}));
  std::vector<MPI_Request> reqs(bufs.size());
  double raw = 1e30, bucketed = 1e30, without = 1e30, with = 1e30, exposed_best = 1e30;
  step(plain, nullptr, nullptr);
  step(synced, &bucketer, nullptr);
  for (int i = 0; i < FLAGS_bench_iters; ++i) {
    MPI_Barrier(MPI_COMM_WORLD);
    auto t = Clock::now();
    MPI_Allreduce(MPI_IN_PLACE, flat.data_ptr<float>(), static_cast<int>(n), MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
    raw = std::min(raw, ms(t, Clock::now()));
    MPI_Barrier(MPI_COMM_WORLD);
    t = Clock::now();  // the same bytes in the trainer's buckets, all in flight at once
    for (size_t k = 0; k < bufs.size(); ++k)
      MPI_Iallreduce(MPI_IN_PLACE, bufs[k].data_ptr<float>(), static_cast<int>(bufs[k].numel()), MPI_FLOAT, MPI_SUM,
                     MPI_COMM_WORLD, &reqs[k]);
    MPI_Waitall(static_cast<int>(reqs.size()), reqs.data(), MPI_STATUSES_IGNORE);
    bucketed = std::min(bucketed, ms(t, Clock::now()));
    MPI_Barrier(MPI_COMM_WORLD);
    t = Clock::now();
    step(plain, nullptr, nullptr);
    without = std::min(without, ms(t, Clock::now()));
    MPI_Barrier(MPI_COMM_WORLD);
    double exposed = 0;
    t = Clock::now();
    step(synced, &bucketer, &exposed);
    with = std::min(with, ms(t, Clock::now()));
    exposed_best = std::min(exposed_best, exposed);
  }
  if (rank == 0) {
    std::cout << "compute: " << excel::compute_summary() << "\n";
    std::cout << world << " ranks, " << n << " parameters (" << n * 4 / 1e6 << " MB), " << bucketer.num_buckets()
              << " buckets: raw MPI_Allreduce " << raw << " ms, bucketed " << bucketed << " ms; heads step " << without
              << " ms without sync, " << with << " ms with bucketed sync (" << exposed_best
              << " ms left after backward)\n";
    std::cout << "{\"bench\":\"allreduce\",\"blas\":\"" << excel::compute_summary() << "\",\"ranks\":" << world
              << ",\"bytes\":" << n * 4 << ",\"buckets\":" << bucketer.num_buckets() << ",\"raw_allreduce_ms\":" << raw
              << ",\"bucketed_allreduce_ms\":" << bucketed << ",\"bucketed_vs_raw\":" << bucketed / raw
              << ",\"step_without_sync_ms\":" << without << ",\"step_with_sync_ms\":" << with
              << ",\"exposed_sync_ms\":" << exposed_best << ",\"step_ratio\":" << with / without
              << ",\"exposed_vs_raw\":" << exposed_best / raw << "}" << std::endl;
  }
  MPI_Finalize();
  return 0;
}
