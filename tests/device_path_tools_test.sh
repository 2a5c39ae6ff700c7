#!/usr/bin/env bash
# Cross-cutting: every model tool on the device path (--device=cpu --model_kernels=torch: the code
# a GPU runs, on the CPU), beside the CPU path where the outputs compare. Each start log says the
# device and why; excel_precompute's cache trains excel_train; excel_train (online, 2 ranks) writes
# a checkpoint that excel_eval scores with and without CRF; excel_cam_demo's CAMs equal the CPU
# path's within 1e-4; the benchmarks report the device. Bad device choices: test flag_validation.
#   device_path_tools_test.sh BUILD_DIR SOURCE_DIR
set -euo pipefail
BUILD=$1
# shellcheck source=tests/test_lib.sh
source "$(dirname "$0")/test_lib.sh"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
DEV=(--device=cpu --model_kernels=torch)

make_tiny_data "$work" 10 96 160
M=(--data_root="$work/voc" --model_clip="$work/clip/clip.jit.pt" --model_bank="$work/bank.h5" --model_crop=64 --threads=1)
logs_say() {  # LOG WHAT: the start line names the device path
  grep -q "device cpu (--device=cpu), backbone fp32, kernels torch (--model_kernels)" "$1" || { cat "$1"; fail "$2: no device line"; }
}

timeout 300 mpirun -np 2 "$BUILD/src/excel_precompute" "${M[@]}" "${DEV[@]}" --data_split=train \
  --cache_dir="$work/cache" > "$work/pre.log" 2>&1 || { cat "$work/pre.log"; fail "precompute"; }
logs_say "$work/pre.log" excel_precompute
T=("$BUILD/src/excel_train" "${M[@]}" "${DEV[@]}" --data_train_split=train --data_val_split=val --model_adapter_dim=16
   --train_batch=2 --train_max_iters=4 --train_warmup_iters=1 --train_switch_iter=2 --train_pred_target_iter=3
   --eval_every=4 --eval_limit=2)
timeout 300 "${T[@]}" --cache_dir="$work/cache" --output_dir="$work/cached" > "$work/cached.log" 2>&1 \
  || { cat "$work/cached.log"; fail "cached training"; }
logs_say "$work/cached.log" "excel_train (cached)"
timeout 300 mpirun -np 2 "${T[@]}" --output_dir="$work/online" > "$work/online.log" 2>&1 \
  || { cat "$work/online.log"; fail "online training"; }
logs_say "$work/online.log" "excel_train (online)"
grep -q "validation on 2 images" "$work/online.log" || fail "online training did not validate"
[ -s "$work/cached/checkpoint.h5" ] && [ -s "$work/online/checkpoint.h5" ] || fail "no checkpoint"

timeout 300 mpirun -np 2 "$BUILD/src/excel_eval" "${M[@]}" "${DEV[@]}" --data_split=val --eval_mode=checkpoint \
  --eval_checkpoint="$work/online/checkpoint.h5" --eval_scales=64,48 --eval_crf --eval_crf_iterations=2 \
  --output_dir="$work/eval" > "$work/eval.log" 2>&1 || { cat "$work/eval.log"; fail "eval"; }
logs_say "$work/eval.log" excel_eval
[ -s "$work/eval/table.json" ] && ls "$work/eval/segmentation/"*.png > /dev/null || fail "eval wrote no table or masks"

for k in blas torch; do
  timeout 300 "$BUILD/src/excel_cam_demo" "${M[@]}" --device=cpu --model_kernels=$k --data_split=train \
    --output_dir="$work/cams_$k" > "$work/cams_$k.log" 2>&1 || { cat "$work/cams_$k.log"; fail "cam demo ($k)"; }
done
logs_say "$work/cams_torch.log" excel_cam_demo
/usr/bin/python3 - "$work/cams_blas/cams.h5" "$work/cams_torch/cams.h5" <<'PYEOF' || fail "CAMs differ"
import sys, h5py, numpy as np
a, b = (h5py.File(p, "r")["cams"][()] for p in sys.argv[1:3])
err = float(np.abs(a - b).max() / max(1.0, float(np.abs(a).max())))
print(f"[equivalence] excel_cam_demo device path vs CPU path, CAMs: largest difference {err} (bound 1e-4)")
assert a.shape == b.shape and err <= 1e-4, err
PYEOF

timeout 300 "$BUILD/bench/excel_bench_train" "${DEV[@]}" --model_crop=32 --train_batch=2 --bench_iters=1 --threads=1 \
  > "$work/bt.log" 2>&1 || { cat "$work/bt.log"; fail "excel_bench_train"; }
grep -q '"device":"cpu","precision":"fp32"' "$work/bt.log" || { cat "$work/bt.log"; fail "bench_train JSON"; }
timeout 300 "$BUILD/bench/excel_bench_backbone" "${DEV[@]}" --model_crop=32 --bench_batches=2 --bench_iters=1 \
  --threads=1 > "$work/bb.log" 2>&1 || { cat "$work/bb.log"; fail "excel_bench_backbone"; }
grep -q '"device":"cpu","precision":"fp32"' "$work/bb.log" || { cat "$work/bb.log"; fail "bench_backbone JSON"; }
echo "PASS: precompute, cached and online training, eval with CRF, CAM demo and benchmarks on the device path"
