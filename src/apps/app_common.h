// What every MPI-launched executable shares: the common flags (defined once, in
// app_common.cpp) and the MPI main wrapper.
#pragma once
#include <gflags/gflags.h>

#include <functional>
#include <string>

#include "excel/common/tool_flags.h"
#include "excel/metrics/metrics.h"

DECLARE_string(data_root);
DECLARE_string(data_labels);
DECLARE_string(data_dataset);
DECLARE_string(model_clip);
DECLARE_string(model_bank);
DECLARE_string(model_bpe);
DECLARE_int32(model_crop);
DECLARE_int32(threads);
DECLARE_string(metrics_bind);
DECLARE_int32(metrics_port);
DECLARE_string(metrics_sd_dir);
DECLARE_string(metrics_job_id);
DECLARE_string(metrics_pushgateway);
DECLARE_int32(metrics_linger_s);

namespace excel::apps {

// Parses and checks the flags (parse_tool_flags: a value out of range ends every rank with status 2
// before MPI starts), initialises MPI and rank-prefixed logging, sizes the thread pool for the ranks
// on this node, runs body(rank, world) and finalises MPI. An exception is reported with the rank
// and aborts every rank (none is left waiting in a collective): status 2 for a ConfigError
// (inconsistent flags or configuration found later, e.g. a crop that is no multiple of the
// checkpoint's patch), 1 otherwise.
// `usage` opens --help (which lists the tool's own flags by concern).
int run_mpi_main(int argc, char** argv, const char* name, const char* usage, const std::function<void(int, int)>& body);

// Metrics port for this process: --metrics_port + local rank (0 when disabled).
int metrics_port_for_local_rank();
// The shared data_* and model_* flags into a tool's configuration (the split is per tool).
template <class Config>
void apply_common_flags(Config& c) {
  c.data_root = FLAGS_data_root;
  c.labels_file = FLAGS_data_labels;
  c.dataset = FLAGS_data_dataset;
  c.clip_checkpoint = FLAGS_model_clip;
  c.bank = FLAGS_model_bank;
  c.bpe_path = FLAGS_model_bpe;
  c.crop = FLAGS_model_crop;
}

// The metrics flags for this process; job id from --metrics_job_id, else SLURM_JOB_ID, else "local".
metrics::MetricsOptions metrics_options(const std::string& phase, int rank, int world);

}  // namespace excel::apps
