// Gradient synchronisation at VOC size (6.3 M head parameters, ViT-B/16 features), run under
// `mpirun -np N` on the chosen device and backend: one all-reduce of all gradient bytes, the same
// bytes in the trainer's buckets all in flight, the heads' forward+backward step without
// communication, the same step with bucketed all-reduce from backward hooks, and the
// communication left exposed after backward. Last line (rank 0): one JSON object.
#include <gflags/gflags.h>
#include <glog/logging.h>
#include <mpi.h>
#include <torch/torch.h>

#include <chrono>
#include <iostream>

#include "excel/comm/communicator.h"
#include "excel/comm/gradient_bucketer.h"
#include "excel/comm/make_communicator.h"
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
DEFINE_string(comm_backend, "auto",
              "collectives: mpi, nccl (CUDA builds) or auto (nccl when built with CUDA and GPUs are visible)");
EXCEL_FLAG_RULE(comm_backend, "auto, mpi or nccl", excel::flag_one_of(FLAGS_comm_backend, {"auto", "mpi", "nccl"}));
DEFINE_int32(threads, 0, "intra-op threads per rank (0: the cores of this node / its ranks)");
EXCEL_FLAG_RULE(threads, ">= 0", FLAGS_threads >= 0);

using Clock = std::chrono::steady_clock;
static double ms(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double>(b - a).count() * 1e3;
}

int main(int argc, char** argv) {
  excel::parse_tool_flags(&argc, &argv,
                          "Gradient synchronisation at VOC size (6.3 M head parameters, ViT-B/16 features), run under "
                          "`mpirun -np N` on --device with --comm_backend: one all-reduce of all gradient bytes, the "
                          "same bytes in the trainer's buckets all in flight, the heads' forward+backward step without "
                          "communication, the same step with bucketed all-reduce from backward hooks, and the "
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
  const auto& where = excel::model::use_device_flags_or_exit("excel_bench_allreduce", excel::launcher_local_rank());
  excel::model::set_placement(where);
  const at::Device dev = excel::model::device();
  // Times the work, not its launch: NCCL's bucketed sums return before they finish.
  auto settle = [&] {
    if (where.cuda) torch::cuda::synchronize();
  };
  excel::model::HeadsConfig hc;  // VOC: 768 -> 256, 12 layers, 21 classes
  torch::manual_seed(rank);
  at::Tensor feats = torch::randn({12, FLAGS_train_batch, 401, 768}).to(dev);
  auto step = [&](excel::model::Heads& h, excel::comm::GradientBucketer* b, double* exposed) {
    for (auto p : h.parameters()) p.mutable_grad() = at::Tensor();
    if (b) b->begin_step();
    auto out = h.forward(feats, true, {}, 20, 20);
    (out.logits.pow(2).mean() + out.affinity.mean()).backward();
    auto t = Clock::now();
    if (b) b->finish();
    settle();
    if (exposed) *exposed = ms(t, Clock::now());
  };
  excel::model::Heads plain(hc, 0), synced(hc, 0);
  plain.to(dev);
  synced.to(dev);
  auto comm = excel::comm::make_communicator(FLAGS_comm_backend);
  excel::comm::GradientBucketer bucketer(synced.parameters(), *comm, static_cast<size_t>(FLAGS_comm_bucket_mb) << 20);
  const int64_t n = plain.num_parameters();
  at::Tensor flat = torch::randn({n}).to(dev);
  std::vector<at::Tensor> bufs;
  for (int64_t k : bucketer.bucket_numels()) bufs.push_back(torch::randn({k}).to(dev));
  double raw = 1e30, bucketed = 1e30, without = 1e30, with = 1e30, exposed_best = 1e30;
  step(plain, nullptr, nullptr);
  step(synced, &bucketer, nullptr);
  for (int i = 0; i < FLAGS_bench_iters; ++i) {
    comm->barrier();
    auto t = Clock::now();
    comm->all_reduce_sum(flat);
    settle();
    raw = std::min(raw, ms(t, Clock::now()));
    comm->barrier();
    t = Clock::now();  // the same bytes in the trainer's buckets, all in flight at once
    std::vector<std::unique_ptr<excel::comm::PendingSum>> pending;
    for (auto& buf : bufs) pending.push_back(comm->all_reduce_sum_async(buf));
    for (auto& p : pending) p->wait();
    settle();
    bucketed = std::min(bucketed, ms(t, Clock::now()));
    comm->barrier();
    t = Clock::now();
    step(plain, nullptr, nullptr);
    settle();
    without = std::min(without, ms(t, Clock::now()));
    comm->barrier();
    double exposed = 0;
    t = Clock::now();
    step(synced, &bucketer, &exposed);
    with = std::min(with, ms(t, Clock::now()));
    exposed_best = std::min(exposed_best, exposed);
  }
  if (rank == 0) {
    std::cout << "compute: " << excel::compute_summary() << "\n";
    std::cout << excel::model::describe(where) << ", collectives over " << comm->backend_name() << "\n";
    std::cout << world << " ranks, " << n << " parameters (" << n * 4 / 1e6 << " MB), " << bucketer.num_buckets()
              << " buckets: one all-reduce " << raw << " ms, bucketed " << bucketed << " ms; heads step " << without
              << " ms without sync, " << with << " ms with bucketed sync (" << exposed_best
              << " ms left after backward)\n";
    std::cout << "{\"bench\":\"allreduce\",\"blas\":\"" << excel::compute_summary() << "\",\"device\":\"" << dev.str()
              << "\",\"backend\":\"" << comm->backend_name() << "\",\"ranks\":" << world << ",\"bytes\":" << n * 4
              << ",\"buckets\":" << bucketer.num_buckets() << ",\"raw_allreduce_ms\":" << raw
              << ",\"bucketed_allreduce_ms\":" << bucketed << ",\"bucketed_vs_raw\":" << bucketed / raw
              << ",\"step_without_sync_ms\":" << without << ",\"step_with_sync_ms\":" << with
              << ",\"exposed_sync_ms\":" << exposed_best << ",\"step_ratio\":" << with / without
              << ",\"exposed_vs_raw\":" << exposed_best / raw << "}" << std::endl;
  }
  MPI_Finalize();
  return 0;
}
