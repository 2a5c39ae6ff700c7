#include "app_common.h"

#include <glog/logging.h>
#include <mpi.h>

#include <cstdlib>

#include "excel/comm/communicator.h"
#include "excel/comm/progress_watchdog.h"
#include "excel/common/blas.h"
#include "excel/common/errors.h"
#include "excel/common/logging.h"
#include "excel/common/process.h"
#include "excel/common/tool_flags.h"
#include "excel/model/placement.h"

DEFINE_string(data_root, "demo_out/voc", "VOC-layout data folder (JPEGImages/, SegmentationClassAug/, ImageSets/)");
EXCEL_FLAG_RULE(data_root, "a folder (not empty)", !FLAGS_data_root.empty());
DEFINE_string(data_labels, "", "image-level labels file (empty: derived from the masks)");
DEFINE_string(data_dataset, "voc", "class set and prompts of the data");
EXCEL_FLAG_RULE(data_dataset, "voc or coco", excel::flag_one_of(FLAGS_data_dataset, {"voc", "coco"}));
DEFINE_string(model_clip, "", "CLIP checkpoint (OpenAI's ViT-B-16.pt or a torch.save state dict)");
DEFINE_string(model_bank, "", "TSE attribute bank .h5 matching the checkpoint's text tower");
DEFINE_string(model_bpe, "",
              "BPE merge list the checkpoint was trained with (default: $EXCEL_BPE_PATH, else CLIP's list in data/ "
              "or in an installed clip/open_clip package; model::default_bpe_path)");
DEFINE_int32(model_crop, 320, "network input side");
EXCEL_FLAG_RULE(model_crop, ">= 1, a multiple of the checkpoint's patch (checked when it is loaded)",
                FLAGS_model_crop >= 1);
DEFINE_int32(threads, 0, "intra-op threads per rank (0: the cores of this node / its ranks)");
EXCEL_FLAG_RULE(threads, ">= 0", FLAGS_threads >= 0);
DEFINE_string(metrics_bind, "127.0.0.1",
              "address of the Prometheus endpoint (IPv4, or IPv6 such as ::1 or ::; 'host': the address this "
              "host's name resolves to, per node)");
EXCEL_FLAG_RULE(metrics_bind, "an IPv4 or IPv6 address, or 'host'",
                FLAGS_metrics_bind == "host" || excel::flag_ip_address(FLAGS_metrics_bind));
DEFINE_int32(metrics_port, 0, "Prometheus port base, + local rank (0 disables)");
EXCEL_FLAG_RULE(metrics_port, "0..65535", FLAGS_metrics_port >= 0 && FLAGS_metrics_port <= 65535);
DEFINE_string(metrics_sd_dir, "",
              "list each rank in its host's Prometheus file_sd target file here, "
              "excel_JOBID_PHASE_HOST.json (removed when the host's last rank exits)");
DEFINE_string(metrics_job_id, "", "job_id label (default: $SLURM_JOB_ID, else 'local')");
DEFINE_string(metrics_pushgateway, "", "host:port of a Prometheus Pushgateway to push final values to");
EXCEL_FLAG_RULE(metrics_pushgateway, "empty or HOST:PORT (port 1..65535)",
                FLAGS_metrics_pushgateway.empty() || excel::flag_host_port(FLAGS_metrics_pushgateway));
DEFINE_int32(metrics_linger_s, 0, "keep serving metrics this many seconds after the work ends");
EXCEL_FLAG_RULE(metrics_linger_s, ">= 0", FLAGS_metrics_linger_s >= 0);

namespace excel::apps {
namespace {
int local_rank = 0, local_size = 1;
}  // namespace

int metrics_port_for_local_rank() {
  return FLAGS_metrics_port > 0 ? FLAGS_metrics_port + local_rank : 0;
}

metrics::MetricsOptions metrics_options(const std::string& phase, int rank, int world) {
  metrics::MetricsOptions o;
  o.bind = FLAGS_metrics_bind == "host" ? host_address() : FLAGS_metrics_bind;
  o.port = metrics_port_for_local_rank();
  o.job_id = !FLAGS_metrics_job_id.empty() ? FLAGS_metrics_job_id
             : std::getenv("SLURM_JOB_ID") ? std::getenv("SLURM_JOB_ID")
                                           : "local";
  o.rank = rank;
  o.world_size = world;
  o.phase = phase;
  o.sd_dir = FLAGS_metrics_sd_dir;
  o.pushgateway = FLAGS_metrics_pushgateway;
  o.linger_s = FLAGS_metrics_linger_s;
  return o;
}

int run_mpi_main(int argc, char** argv, const char* name, const char* usage,
                 const std::function<void(int, int)>& body) {
  parse_tool_flags(&argc, &argv, usage);
  comm::prefer_ring_iallreduce();
  comm::prefer_portable_windows();
  MPI_Init(&argc, &argv);
  int rank = 0, world = 1;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &world);
  init_logging(argv[0], rank);
  // Ranks sharing this node, from MPI itself (launcher variables may be missing).
  MPI_Comm node;
  MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, rank, MPI_INFO_NULL, &node);
  MPI_Comm_rank(node, &local_rank);
  MPI_Comm_size(node, &local_size);
  MPI_Comm_free(&node);
  int rc = 0;
  try {
    const int threads = configure_process(FLAGS_threads, local_size);
    const CpuShare cpus = cpu_share();
    const std::string why = FLAGS_threads > 0 ? "--threads"
                            : cpus.bound      ? "bound by the launcher"
                                              : "shared by " + std::to_string(local_size) + " local ranks";
    LOG(INFO) << name << ": rank " << rank << " of " << world << ", local rank " << local_rank << " of " << local_size
              << " on " << metrics::host_name() << ", " << threads << " threads (" << cpus.allowed << " CPUs allowed, "
              << why << "; " << compute_summary() << ")";
    model::use_device_flags(local_rank);  // ConfigError naming the flag before any work
    body(rank, world);
  } catch (const std::exception& e) {
    // Inconsistent flags or configuration (ConfigError) exit 2 like a flag out of range; others 1.
    rc = dynamic_cast<const ConfigError*>(&e) ? 2 : 1;
    // Through glog: the rank prefix, and the log file when there is --log_dir.
    log_error_and_flush(std::string(name) + ": error: " + e.what());
    if (world > 1) MPI_Abort(MPI_COMM_WORLD, rc);
  }
  MPI_Finalize();
  return rc;
}

}  // namespace excel::apps
