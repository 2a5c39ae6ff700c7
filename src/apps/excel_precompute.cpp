// mpirun -np N excel_precompute --cache_dir=DIR --data_root=... --model_clip=... --model_bank=...
// Each rank writes its own shard of the frozen backbone's features (docs/algorithm.md §11); rank 0
// writes the manifest when every shard is complete. A rerun keeps complete shards and redoes
// partial ones, so a killed job resumes.
#include <gflags/gflags.h>
#include <glog/logging.h>
#include <mpi.h>

#include <algorithm>
#include <chrono>
#include <iostream>

#include "app_common.h"
#include "excel/cache/precompute.h"
#include "excel/common/errors.h"
#include "excel/common/timing.h"

DEFINE_string(cache_dir, "cache", "output folder for shards and manifest.json (what excel_train --cache_dir reads)");
EXCEL_FLAG_RULE(cache_dir, "a folder (not empty)", !FLAGS_cache_dir.empty());
DEFINE_string(data_split, "train_aug", "list to cache (excel_train's --data_train_split)");
EXCEL_FLAG_RULE(data_split, "a list name or path (not empty)", !FLAGS_data_split.empty());
DEFINE_int32(data_views, 1, "augmented views per image (view v uses augmentation seed (seed, image, v))");
EXCEL_FLAG_RULE(data_views, ">= 1", FLAGS_data_views >= 1);
DEFINE_string(cache_dtype, "fp16", "storage dtype of the cached features");
EXCEL_FLAG_RULE(cache_dtype, "fp32, fp16 or bf16", excel::flag_one_of(FLAGS_cache_dtype, {"fp32", "fp16", "bf16"}));
DEFINE_int32(model_batch, 4, "crops per backbone forward");
EXCEL_FLAG_RULE(model_batch, ">= 1", FLAGS_model_batch >= 1);
DEFINE_int32(train_seed, 0, "augmentation seed: the --train_seed of the training run that reads the cache");
EXCEL_FLAG_RULE(train_seed, ">= 0", FLAGS_train_seed >= 0);
DEFINE_double(train_tau, 0.79, "box threshold of the static pseudo-labels (the training run's --train_tau)");
EXCEL_FLAG_RULE(train_tau, "in (0, 1)", FLAGS_train_tau > 0 && FLAGS_train_tau < 1);
EXCEL_FLAG_RULE(model_clip, "a CLIP checkpoint (required)", !FLAGS_model_clip.empty());
EXCEL_FLAG_RULE(model_bank, "an attribute bank .h5 (required)", !FLAGS_model_bank.empty());

int main(int argc, char** argv) {
  return excel::apps::run_mpi_main(
      argc, argv, "excel_precompute",
      "usage: mpirun -np N excel_precompute --cache_dir=DIR --data_root=DIR --model_clip=CKPT --model_bank=BANK.h5\n"
      "Caches the frozen backbone's outputs in per-rank HDF5 shards and a manifest (resumable).",
      [](int rank, int world) {
        excel::cache::CacheConfig c;
        excel::apps::apply_common_flags(c);
        c.split = FLAGS_data_split;
        c.cache_dir = FLAGS_cache_dir;
        c.views = FLAGS_data_views;
        c.batch = FLAGS_model_batch;
        c.seed = static_cast<uint64_t>(FLAGS_train_seed);
        c.dtype = FLAGS_cache_dtype;
        c.tau = FLAGS_train_tau;
        excel::metrics::Metrics mx(excel::apps::metrics_options("precompute", rank, world));
        auto& written = mx.counter("excel_cache_written_bytes_total", "Payload bytes written to cache shards");
        excel::metrics::ProgressMetrics progress(&mx, "excel_precompute", "rows", "batch");  // rows = crop x view
        auto t0 = std::chrono::steady_clock::now();
        excel::cache::ShardInfo s =
            excel::cache::precompute_shard(c, rank, world, [&](const excel::cache::ShardProgress& p) {
              written.Increment(static_cast<double>(p.bytes_written));
              progress.advance(p.batch_rows, p.batch_seconds, p.rows_done, p.rows_total, excel::seconds_since(t0));
            });
        progress.planned(s.rows);
        progress.finished();
        const double dt = excel::seconds_since(t0);
        if (s.reused) {
          LOG(INFO) << s.file << " complete from an earlier run: kept";
        } else {
          LOG(INFO) << s.file << ": " << s.rows << " rows in " << dt << " s (" << s.rows / dt
                    << " crops/s on this rank)";
        }
        // Gather every shard's record on rank 0: (first, n, rows, crc).
        int64_t mine[4] = {s.first_sample, s.num_samples, s.rows, static_cast<int64_t>(s.crc32)};
        std::vector<int64_t> all(static_cast<size_t>(4 * world));
        MPI_Gather(mine, 4, MPI_INT64_T, all.data(), 4, MPI_INT64_T, 0, MPI_COMM_WORLD);
        if (rank == 0) {
          std::vector<excel::cache::ShardInfo> shards;
          for (int r = 0; r < world; ++r) {
            excel::cache::ShardInfo si;
            si.file = excel::cache::shard_name(r, world);
            si.first_sample = all[4 * r];
            si.num_samples = all[4 * r + 1];
            si.rows = all[4 * r + 2];
            si.crc32 = static_cast<uint32_t>(all[4 * r + 3]);
            shards.push_back(si);
          }
          excel::cache::write_manifest(c, shards);
          LOG(INFO) << "wrote " << c.cache_dir << "/manifest.json (" << world << " shards)";
        }
        mx.finish();
      });
}
