#!/usr/bin/env bash
# Every tool checks its flags before any work: a bad value ends the run with status 2 and one line
# naming the flag, the value and the accepted values, before any output folder is created; under
# `mpirun -np 2` every rank exits so (no rank waits in a collective). A value gflags cannot parse
# and an unknown flag exit 2 too; a configuration error found later (crop vs the checkpoint's
# patch) exits 2 on every rank; and good values still run.
#   flag_validation_test.sh BUILD_DIR SOURCE_DIR
set -euo pipefail
BUILD=$1
# shellcheck source=tests/test_lib.sh
source "$(dirname "$0")/test_lib.sh"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
n=0

# expect_bad OUT FLAG VALUE CMD...: CMD exits 2, prints "invalid --FLAG=VALUE (accepted: ...)" and
# leaves OUT (its output folder or file) uncreated.
expect_bad() {
  local out=$1 flag=$2 value=$3 rc=0 log
  shift 3
  log=$(timeout 120 "$@" 2>&1) || rc=$?
  [ "$rc" -eq 2 ] || { echo "$log"; fail "$* exited $rc, expected 2"; }
  grep -qF -- "invalid --$flag=$value (accepted: " <<<"$log" || { echo "$log"; fail "$*: no line naming --$flag=$value"; }
  [ ! -e "$out" ] || fail "$*: $out was created"
  n=$((n + 1))
  echo "ok: $(grep -m1 -F -- "invalid --$flag=" <<<"$log")"
}

make_tiny_data "$work" 8 64 96
M=(--data_root="$work/voc" --model_clip="$work/clip/clip.jit.pt" --model_bank="$work/bank.h5" --threads=1)
T=(mpirun -np 2 "$BUILD/src/excel_train" "${M[@]}" --data_train_split=train --data_val_split=val --model_crop=64
   --model_adapter_dim=16 --train_max_iters=2 --train_warmup_iters=1 --eval_every=0 --output_dir="$work/train")
E=(mpirun -np 2 "$BUILD/src/excel_eval" "${M[@]}" --data_split=val --model_crop=64 --output_dir="$work/eval")
P=(mpirun -np 2 "$BUILD/src/excel_precompute" "${M[@]}" --data_split=train --model_crop=64 --cache_dir="$work/cache")
C=(mpirun -np 2 "$BUILD/src/excel_cam_demo" "${M[@]}" --data_split=train --model_crop=64 --output_dir="$work/cams")

# excel_train (2 ranks)
expect_bad "$work/train" train_batch 0 "${T[@]}" --train_batch=0
expect_bad "$work/train" train_lr -1 "${T[@]}" --train_lr=-1
expect_bad "$work/train" train_lr nan "${T[@]}" --train_lr=nan
expect_bad "$work/train" train_max_iters -5 "${T[@]}" --train_max_iters=-5
expect_bad "$work/train" train_tau 1 "${T[@]}" --train_tau=1
expect_bad "$work/train" train_weight_decay -0.5 "${T[@]}" --train_weight_decay=-0.5
expect_bad "$work/train" comm_bucket_mb -2 "${T[@]}" --comm_bucket_mb=-2
expect_bad "$work/train" comm_backend gloo "${T[@]}" --comm_backend=gloo
expect_bad "$work/train" data_dataset ade "${T[@]}" --data_dataset=ade
expect_bad "$work/train" metrics_port 70000 "${T[@]}" --metrics_port=70000
expect_bad "$work/train" model_crop 0 "${T[@]}" --model_crop=0
expect_bad "$work/train" train_switch_iter 50 "${T[@]}" --train_max_iters=100 --train_switch_iter=50 --train_pred_target_iter=10
expect_bad "$work/train" model_clip '""' "${T[@]}" --model_clip=
expect_bad "$work/train" device gpu "${T[@]}" --device=gpu
expect_bad "$work/train" model_precision fp64 "${T[@]}" --model_precision=fp64
expect_bad "$work/train" model_kernels cublas "${T[@]}" --model_kernels=cublas
# Two bad values: one line each (per rank; mpirun may stop the second rank before it prints).
rc=0; log=$(timeout 120 "${T[@]}" --train_batch=0 --threads=-1 2>&1) || rc=$?
[ "$rc" -eq 2 ] && grep -q "invalid --train_batch=0 " <<<"$log" && grep -q "invalid --threads=-1 " <<<"$log" \
  || { echo "$log"; fail "two bad values: exit $rc"; }
# A value gflags cannot parse, an unknown flag.
rc=0; log=$(timeout 120 "${T[@]}" --train_batch=abc 2>&1) || rc=$?
[ "$rc" -eq 2 ] && grep -q "train_batch" <<<"$log" || { echo "$log"; fail "--train_batch=abc: exit $rc"; }
rc=0; log=$(timeout 120 "${T[@]}" --train_bacth=2 2>&1) || rc=$?
[ "$rc" -eq 2 ] && grep -q "train_bacth" <<<"$log" || { echo "$log"; fail "unknown flag: exit $rc"; }
[ ! -e "$work/train" ] || fail "a refused excel_train created its output folder"

# excel_eval, excel_precompute, excel_cam_demo (2 ranks)
expect_bad "$work/eval" eval_mode dense "${E[@]}" --eval_mode=dense
expect_bad "$work/eval" eval_tau 0 "${E[@]}" --eval_tau=0
expect_bad "$work/eval" eval_scales 64,x "${E[@]}" --eval_scales=64,x
expect_bad "$work/eval" eval_checkpoint '""' "${E[@]}" --eval_mode=checkpoint
expect_bad "$work/eval" eval_save_masks -2 "${E[@]}" --eval_save_masks=-2
expect_bad "$work/eval" eval_strips -1 "${E[@]}" --eval_strips=-1
expect_bad "$work/eval" metrics_bind localhost "${E[@]}" --metrics_bind=localhost
expect_bad "$work/cache" cache_dtype fp8 "${P[@]}" --cache_dtype=fp8
expect_bad "$work/cache" data_views 0 "${P[@]}" --data_views=0
expect_bad "$work/cache" model_batch 0 "${P[@]}" --model_batch=0
expect_bad "$work/cache" train_seed -1 "${P[@]}" --train_seed=-1
expect_bad "$work/cams" model_batch 0 "${C[@]}" --model_batch=0
expect_bad "$work/cams" metrics_pushgateway nohost "${C[@]}" --metrics_pushgateway=nohost

# Tools without MPI.
expect_bad "$work/voc2" data_num_images 1 "$BUILD/data_tools/make_synthetic_voc" --data_root="$work/voc2" --data_num_images=1
expect_bad "$work/voc2" data_max_side 100 "$BUILD/data_tools/make_synthetic_voc" --data_root="$work/voc2" --data_min_side=200 --data_max_side=100
expect_bad "$work/clip2" model_vision_width 100 "$BUILD/data_tools/make_random_clip" --output_dir="$work/clip2" --model_vision_width=100
expect_bad "$work/bank2.h5" bank_clusters 0 "$BUILD/data_tools/build_attribute_bank" --bank_descriptions="$work/voc/descriptions.json" \
  --model_clip="$work/clip/clip.jit.pt" --bank_clusters=0 --model_bank="$work/bank2.h5"
expect_bad "$work/bank3.h5" data_dataset ade "$BUILD/data_tools/import_attribute_bank" --bank_pth="$work/x.pth" \
  --data_dataset=ade --model_bank="$work/bank3.h5"
expect_bad "$work/inspect" view -1 "$BUILD/data_tools/inspect_cache" --cache_dir="$work/cache" --view=-1 --output_dir="$work/inspect"
expect_bad "$work/heads.h5" model_decoder_heads 0 "$BUILD/data_tools/import_reference_checkpoint" --input="$work/x.pth" \
  --output="$work/heads.h5" --model_decoder_heads=0
expect_bad "$work/dump.h5" input '""' "$BUILD/src/excel_dump_stages" --output="$work/dump.h5"
expect_bad "$work/none" model_crop 100 "$BUILD/bench/excel_bench_train" --model_crop=100
expect_bad "$work/none" bench_batches 4,0 "$BUILD/bench/excel_bench_backbone" --bench_batches=4,0
expect_bad "$work/bench_cache" cache_dtype int8 "$BUILD/bench/excel_bench_cache" --model_bank="$work/bank.h5" \
  --bench_work_dir="$work/bench_cache" --cache_dtype=int8
expect_bad "$work/none" comm_bucket_mb -1 mpirun -np 2 "$BUILD/bench/excel_bench_allreduce" --comm_bucket_mb=-1

# Found after start (the crop against the checkpoint's patch): every rank exits 2 as well.
rc=0; log=$(timeout 120 "${E[@]}" --model_crop=72 2>&1) || rc=$?
[ "$rc" -eq 2 ] && grep -q "model_crop.*patch" <<<"$log" || { echo "$log"; fail "crop 72: exit $rc"; }
[ ! -e "$work/eval/table.json" ] || fail "crop 72 wrote a table"

# The device choice, checked once the local rank is known: every rank exits 2 naming the flag.
rc=0; log=$(timeout 120 "${T[@]}" --device=cpu --model_precision=fp16 2>&1) || rc=$?
[ "$rc" -eq 2 ] && grep -q -- "--model_precision=fp16: the CPU runs the backbone in fp32 only" <<<"$log" \
  || { echo "$log"; fail "fp16 on the CPU: exit $rc"; }
rc=0; log=$(timeout 120 "${E[@]}" --device=cuda:99 2>&1) || rc=$?
[ "$rc" -eq 2 ] && grep -q -- "--device=cuda:99: no such CUDA device" <<<"$log" || { echo "$log"; fail "cuda:99: exit $rc"; }
[ ! -e "$work/train" ] && [ ! -e "$work/eval/table.json" ] || fail "a refused device choice wrote output"
rc=0; log=$(timeout 120 "$BUILD/src/excel_dump_stages" --input="$work/x.h5" --output="$work/dump.h5" --device=cpu \
  --model_precision=bf16 2>&1) || rc=$?
[ "$rc" -eq 2 ] && grep -q -- "--model_precision=bf16" <<<"$log" && [ ! -e "$work/dump.h5" ] \
  || { echo "$log"; fail "excel_dump_stages bf16 on the CPU: exit $rc"; }
rc=0; log=$(timeout 120 "$BUILD/bench/excel_bench_backbone" --device=cpu --model_tf32 --bench_batches=1 2>&1) || rc=$?
[ "$rc" -eq 2 ] && grep -q -- "--model_tf32: applies to a CUDA device in fp32 only (device cpu" <<<"$log" \
  && ! grep -q "images/s" <<<"$log" || { echo "$log"; fail "TF32 on the CPU: exit $rc"; }

# Good values still run: 2-rank training writes its checkpoint.
timeout 300 "${T[@]}" --train_batch=2 > "$work/good.log" 2>&1 || { cat "$work/good.log"; fail "a good run failed"; }
[ -s "$work/train/checkpoint.h5" ] || fail "the good run wrote no checkpoint"
echo "PASS: $n bad values refused with status 2 before any output; a good run trains"
