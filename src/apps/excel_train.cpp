// excel_train --flagfile=configs/voc_vit_b16.flags [overrides]
// ExCEL training, with the backbone run online or from a feature cache (--cache_dir), on one
// or more MPI ranks (--train_batch samples per rank; gradients summed over MPI).
//   mpirun -np 2 excel_train --flagfile=configs/voc_vit_b16.flags --train_batch=2 ...
#include <gflags/gflags.h>

#include <glog/logging.h>
#include <mpi.h>
#include <algorithm>

#include <iostream>

#include "app_common.h"
#include "excel/comm/make_communicator.h"
#include "excel/common/errors.h"
#include "excel/metrics/metrics.h"
#include "excel/train/trainer.h"

DEFINE_string(data_train_split, "train_aug", "training list (name under ImageSets/Segmentation or a path)");
EXCEL_FLAG_RULE(data_train_split, "a list name or path (not empty)", !FLAGS_data_train_split.empty());
DEFINE_string(data_val_split, "val", "validation list");
EXCEL_FLAG_RULE(data_val_split, "a list name or path (not empty)", !FLAGS_data_val_split.empty());
DEFINE_string(cache_dir, "",
              "feature-cache folder of excel_precompute (or its manifest.json): train without running the backbone "
              "(empty: online)");
DEFINE_int32(cache_budget_mb, 1024, "memory for samples read ahead from the cache");
EXCEL_FLAG_RULE(cache_budget_mb, ">= 1", FLAGS_cache_budget_mb >= 1);
// The heads hold 25 MB of gradients: 25 MB buckets would be one bucket launched after backward,
// with nothing to overlap; 4 MB (8 buckets) hides the sync (bench/excel_bench_allreduce).
DEFINE_int32(comm_bucket_mb, 4,
             "gradient all-reduce bucket size in MB (0: one per parameter, -1: one all-reduce after backward)");
EXCEL_FLAG_RULE(comm_bucket_mb, ">= -1", FLAGS_comm_bucket_mb >= -1);
DEFINE_string(comm_backend, "auto",
              "collectives: mpi, nccl (CUDA builds) or auto (nccl when built with CUDA and GPUs are visible)");
EXCEL_FLAG_RULE(comm_backend, "auto, mpi or nccl", excel::flag_one_of(FLAGS_comm_backend, {"auto", "mpi", "nccl"}));
DEFINE_double(comm_timeout_s, 600,
              "end the job, naming the hung rank, when no rank makes progress for this long (0: off)");
EXCEL_FLAG_RULE(comm_timeout_s, ">= 0 and finite",
                FLAGS_comm_timeout_s >= 0 && excel::flag_finite(FLAGS_comm_timeout_s));
DEFINE_int32(fault_hang_step, -1, "testing: rank --fault_hang_rank hangs at this iteration (-1: never)");
EXCEL_FLAG_RULE(fault_hang_step, ">= -1", FLAGS_fault_hang_step >= -1);
DEFINE_int32(fault_hang_rank, 1, "testing: the rank that hangs");
EXCEL_FLAG_RULE(fault_hang_rank, ">= 0", FLAGS_fault_hang_rank >= 0);
DEFINE_int32(fault_nonfinite_step, -1,
             "testing: rank --fault_nonfinite_rank gets a NaN loss (and gradients) at this iteration, a step "
             "that every rank must skip (-1: never)");
EXCEL_FLAG_RULE(fault_nonfinite_step, ">= -1", FLAGS_fault_nonfinite_step >= -1);
DEFINE_int32(fault_nonfinite_rank, 1, "testing: the rank whose loss is NaN");
EXCEL_FLAG_RULE(fault_nonfinite_rank, ">= 0", FLAGS_fault_nonfinite_rank >= 0);
DEFINE_int32(data_prefetch, 2,
             "online mode: batches decoded and augmented ahead on a worker thread (0: on the training thread)");
EXCEL_FLAG_RULE(data_prefetch, ">= 0", FLAGS_data_prefetch >= 0);
DEFINE_bool(data_skip_bad, false, "count and skip unreadable training images instead of stopping");
DEFINE_int32(data_views, 0, "augmented views cycled per epoch (0: fresh views online / all cached views)");
EXCEL_FLAG_RULE(data_views, ">= 0 (at most the views of --cache_dir)", FLAGS_data_views >= 0);
DEFINE_int32(model_adapter_dim, 256, "adapter / decoder width");
EXCEL_FLAG_RULE(model_adapter_dim, "a positive multiple of 8 (the decoder's heads)",
                FLAGS_model_adapter_dim >= 8 && FLAGS_model_adapter_dim % 8 == 0);
DEFINE_int32(train_batch, 4, "samples per step and rank (the global batch is this x ranks)");
EXCEL_FLAG_RULE(train_batch, ">= 1", FLAGS_train_batch >= 1);
DEFINE_int32(train_max_iters, 30000, "iterations");
EXCEL_FLAG_RULE(train_max_iters, ">= 1", FLAGS_train_max_iters >= 1);
DEFINE_int32(train_warmup_iters, 50, "warm-up iterations");
EXCEL_FLAG_RULE(train_warmup_iters, ">= 0", FLAGS_train_warmup_iters >= 0);
DEFINE_int32(train_switch_iter, 14000, "first iteration with dynamic CAMs (LVC) and G-gated attention");
EXCEL_FLAG_RULE(train_switch_iter, ">= 0", FLAGS_train_switch_iter >= 0);
DEFINE_int32(train_pred_target_iter, 24000, "first iteration whose affinity targets come from predictions");
EXCEL_FLAG_RULE(train_pred_target_iter, ">= 0", FLAGS_train_pred_target_iter >= 0);
EXCEL_FLAG_RULE(train_switch_iter, "<= --train_pred_target_iter when both are below --train_max_iters",
                FLAGS_train_switch_iter <= FLAGS_train_pred_target_iter ||
                    FLAGS_train_switch_iter >= FLAGS_train_max_iters ||
                    FLAGS_train_pred_target_iter >= FLAGS_train_max_iters);
DEFINE_double(train_lr, 1e-4, "base learning rate (the heads train at 10x)");
EXCEL_FLAG_RULE(train_lr, "> 0 and finite", FLAGS_train_lr > 0 && excel::flag_finite(FLAGS_train_lr));
DEFINE_double(train_weight_decay, 1e-2, "AdamW weight decay");
EXCEL_FLAG_RULE(train_weight_decay, ">= 0 and finite",
                FLAGS_train_weight_decay >= 0 && excel::flag_finite(FLAGS_train_weight_decay));
DEFINE_double(train_tau, 0.79, "box threshold in training (0.79 VOC, 0.88 COCO)");
EXCEL_FLAG_RULE(train_tau, "in (0, 1)", FLAGS_train_tau > 0 && FLAGS_train_tau < 1);
DEFINE_int32(train_seed, 0,
             "seed of initialisation, data order, augmentation and dropout (a cache must be built with the same)");
EXCEL_FLAG_RULE(train_seed, ">= 0", FLAGS_train_seed >= 0);
DEFINE_int32(train_log_every, 20, "progress line every N iterations");
EXCEL_FLAG_RULE(train_log_every, ">= 1", FLAGS_train_log_every >= 1);
DEFINE_int32(train_stop_after, 0, "stop after N iterations of this run (checkpoint kept; 0: run to --train_max_iters)");
EXCEL_FLAG_RULE(train_stop_after, ">= 0", FLAGS_train_stop_after >= 0);
DEFINE_bool(train_dynamic_full_pass, false,
            "dynamic CAM by a second backbone pass (reference) instead of the exact linear update");
DEFINE_int32(eval_every, 2000, "validate every N iterations and at the end (0: never)");
EXCEL_FLAG_RULE(eval_every, ">= 0", FLAGS_eval_every >= 0);
DEFINE_int32(eval_limit, 0, "validate on the first N images only (0: all)");
EXCEL_FLAG_RULE(eval_limit, ">= 0", FLAGS_eval_limit >= 0);
DEFINE_string(output_dir, "run", "output folder (checkpoint.h5)");
EXCEL_FLAG_RULE(output_dir, "a folder (not empty)", !FLAGS_output_dir.empty());
DEFINE_int32(ckpt_every, 2000, "checkpoint every N iterations (0: only at the end)");
EXCEL_FLAG_RULE(ckpt_every, ">= 0", FLAGS_ckpt_every >= 0);
DEFINE_string(ckpt_resume, "auto",
              "checkpoint to resume from; 'auto': <output_dir>/checkpoint.h5 if present; '': start afresh");
EXCEL_FLAG_RULE(model_clip, "a CLIP checkpoint (required without --cache_dir)",
                !FLAGS_model_clip.empty() || !FLAGS_cache_dir.empty());
EXCEL_FLAG_RULE(model_bank, "an attribute bank .h5 (required without --cache_dir)",
                !FLAGS_model_bank.empty() || !FLAGS_cache_dir.empty());

int main(int argc, char** argv) {
  return excel::apps::run_mpi_main(
      argc, argv, "excel_train",
      "usage: mpirun -np N excel_train --flagfile=configs/voc_vit_b16.flags --data_root=DIR --model_clip=ViT-B-16.pt\n"
      "         --model_bank=BANK.h5 [--cache_dir=CACHE] --output_dir=DIR\n"
      "ExCEL training of the adapter and segmentation head, online or from a feature cache, on N ranks.",
      [](int rank, int world) {
        auto comm = excel::comm::make_communicator(FLAGS_comm_backend);
        if (rank == 0) LOG(INFO) << "collectives over " << comm->backend_name() << " (" << world << " ranks)";
        excel::train::TrainConfig c;
        excel::apps::apply_common_flags(c);
        c.train_split = FLAGS_data_train_split;
        c.val_split = FLAGS_data_val_split;
        c.adapter_dim = FLAGS_model_adapter_dim;
        c.batch = FLAGS_train_batch;
        c.max_iters = FLAGS_train_max_iters;
        c.warmup_iters = FLAGS_train_warmup_iters;
        c.switch_iter = FLAGS_train_switch_iter;
        c.pred_target_iter = FLAGS_train_pred_target_iter;
        c.base_lr = FLAGS_train_lr;
        c.weight_decay = FLAGS_train_weight_decay;
        c.train_tau = FLAGS_train_tau;
        c.seed = static_cast<uint64_t>(FLAGS_train_seed);
        c.log_every = FLAGS_train_log_every;
        c.dynamic_full_pass = FLAGS_train_dynamic_full_pass;
        c.cache_dir = FLAGS_cache_dir;
        c.views = FLAGS_data_views;
        c.cache_budget_mb = FLAGS_cache_budget_mb;
        c.comm_bucket_mb = FLAGS_comm_bucket_mb;
        c.comm_timeout_s = FLAGS_comm_timeout_s;
        c.fault_hang_step = FLAGS_fault_hang_step;
        c.fault_hang_rank = FLAGS_fault_hang_rank;
        c.fault_nan_step = FLAGS_fault_nonfinite_step;
        c.fault_nan_rank = FLAGS_fault_nonfinite_rank;
        c.skip_bad_inputs = FLAGS_data_skip_bad;
        c.data_prefetch = FLAGS_data_prefetch;
        c.stop_after = FLAGS_train_stop_after;
        c.eval_every = FLAGS_eval_every;
        c.val_limit = FLAGS_eval_limit;
        c.output_dir = FLAGS_output_dir;
        c.ckpt_every = FLAGS_ckpt_every;
        c.resume = FLAGS_ckpt_resume;
        excel::metrics::Metrics mx(excel::apps::metrics_options("train", rank, world));
        auto s = excel::train::run_training(c, &mx, comm.get());
        std::string val = rank != 0 ? "validation runs on rank 0"
                          : s.last_seg_miou < 0
                              ? "no validation (feature cache)"
                              : "validation: segmentation mIoU (vs GT) " + std::to_string(100 * s.first_seg_miou) +
                                    " -> " + std::to_string(100 * s.last_seg_miou) + ", pseudo-label mIoU " +
                                    std::to_string(100 * s.last_pseudo_miou) + ", segmentation vs pseudo-labels " +
                                    std::to_string(100 * s.first_agree_miou) + " -> " +
                                    std::to_string(100 * s.last_agree_miou);
        LOG(INFO) << "done: seg loss " << s.first_seg_loss << " -> " << s.last_seg_loss << ", div loss "
                  << s.first_div_loss << " -> " << s.last_div_loss
                  << ", segmentation vs pseudo-labels mIoU on training crops " << 100 * s.first_train_agree_miou
                  << " -> " << 100 * s.last_train_agree_miou << "; skipped steps " << s.skipped_steps << "; mean step "
                  << s.mean_step_seconds << " s (" << world * c.batch / std::max(1e-9, s.mean_step_seconds)
                  << " samples/s over " << world << " ranks); " << val;
        mx.finish();
      });
}
