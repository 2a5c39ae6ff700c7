// Prometheus file_sd target files, one per host: the ranks of a job phase on one host share
// <sd_dir>/excel_<job_id>_<phase>_<host>.json, one target group per rank,
//   [{"labels":{"__meta_excel_rank":"0"},"targets":["HOST:PORT"]}, ...]
// Each rank adds its group at start and removes it at exit by read-modify-write under an flock
// on <file>.lock (same folder), the new content written atomically (atomic_write); the last rank
// to leave removes the file and the lock. The host is in the name, so on a folder shared by
// several hosts each host only ever touches its own file. `__meta_` labels are seen by
// Prometheus' discovery (and relabeling) only, never stored: the series keep the job_id, rank,
// host and phase labels of the samples themselves.
#pragma once
#include <string>

namespace excel::metrics {

// <sd_dir>/excel_<job_id>_<phase>_<host>.json
std::string host_target_file(const std::string& sd_dir, const std::string& job_id, const std::string& phase,
                             const std::string& host);
// Adds rank's group with `target` (HOST:PORT), replacing any group of the same rank or the same
// target (left by an earlier run that was killed). Creates the file; InputError when it cannot.
void add_target(const std::string& file, int rank, const std::string& target);
// Removes rank's group if it still lists `target`; removes the file and its lock when no group is
// left. InputError when the file cannot be rewritten.
void remove_target(const std::string& file, int rank, const std::string& target);

}  // namespace excel::metrics
