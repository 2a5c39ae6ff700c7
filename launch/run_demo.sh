#!/usr/bin/env bash
# The main job on the embedded default, no downloads: synthetic VOC-layout data + a tiny
# CLIP pre-trained on it -> attribute bank -> `mpirun -np 2` static CAMs (heat-map overlays + cams.h5) ->
# `mpirun -np 2` feature-cache precompute -> `mpirun -np 2` training from the cache (the scored run,
# configs/tiny_demo.flags, global batch 4) -> `mpirun -np 2` a short online training with validation
# (the reference's mode, same flags, fewer steps) -> `mpirun -np 2` evaluation. Every rank serves
# Prometheus metrics on 127.0.0.1: CAM ranks on ${METRICS_PORT:-9400}+local_rank, cached training
# on +2/+3, online training on +4/+5, evaluation on +6/+7.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD_DIR:-build}
OUT=${OUT_DIR:-demo_out}
NP=${NP:-2}

if [ ! -x "$BUILD/src/excel_cam_demo" ]; then
  cmake -S . -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release
  cmake --build "$BUILD" -j "$(nproc)"
fi
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
# The whole job on OpenBLAS's Haswell kernel and ATen's AVX2 code (where the CPU has AVX2 and FMA),
# unless the caller chose a kernel: float rounding then does not depend on the machine, so the table
# the job prints is the README's (docs/tiny_clip.md, "One CLIP on every machine").
if [ -z "${OPENBLAS_CORETYPE:-}${ATEN_CPU_CAPABILITY:-}" ] && grep -qw avx2 /proc/cpuinfo && grep -qw fma /proc/cpuinfo; then
  export OPENBLAS_CORETYPE=Haswell ATEN_CPU_CAPABILITY=avx2
fi
echo "demo: OpenBLAS kernel ${OPENBLAS_CORETYPE:-(its own choice)}, ATen CPU code ${ATEN_CPU_CAPABILITY:-(its own choice)}"
mkdir -p "$OUT"
# Each stage's wall time, and the CPU time (user + sys) of all stages so far, into the log.
t_stage=$SECONDS
stage_done() {
  local cpu
  times >"$OUT/.times"  # in this shell: a pipe would run `times` in a subshell that has no children
  cpu=$(tail -1 "$OUT/.times" | awk '{ for (i = 1; i <= 2; ++i) { split($i, a, /[ms]/); t += 60 * a[1] + a[2] } printf "%.0f", t }')
  echo "demo: stage $1 took $(( SECONDS - t_stage )) s wall (CPU of all stages so far: $cpu s)"
  t_stage=$SECONDS
}

# The world: 560 images (360 train, 200 val: on 40 or 100 val images the scores moved with the draw
# by more than the method's steps, docs/tiny_clip.md "The demo's val split") of 96-160 px, so that the
# 128-px training crops (rescale 0.5-2.0) see objects at about the scale of the evaluation (whole image
# resized to 128); VOC-like object sizes (--data_style=large: 1-2 objects of radius 0.2-0.35 of the
# shorter side). The tiny CLIP is pre-trained on the world (data_tools/pretrain_tiny_clip,
# docs/tiny_clip.md) with 64 images a step: at 32 half of the model seeds tried collapsed.
bash launch/make_tiny_world.sh "$BUILD" "$OUT" --data_num_images="${NUM_IMAGES:-560}" --data_val_fraction=0.3572 \
  --data_min_side=96 --data_max_side=160 --data_style=large --data_seed=0 --model_seed=0 --pretrain \
  --train_lr=3e-3 --train_warmup_iters=10 --train_batch=64
stage_done "world + pre-trained CLIP + bank"

# Static-CAM overlays of the val images at the CLIP's own resolution.
mpirun --oversubscribe -np "$NP" "$BUILD/src/excel_cam_demo" --data_root="$OUT/voc" --data_split=val \
  --model_clip="$OUT/clip/clip.jit.pt" --model_bank="$OUT/bank.h5" --model_bpe="$OUT/bpe.txt.gz" --model_crop=128 --output_dir="$OUT/cams" \
  --metrics_port="${METRICS_PORT:-9400}" --metrics_linger_s="${METRICS_LINGER_S:-0}"
stage_done "static CAMs"

# Feature cache: 2 ranks precompute the frozen backbone into shards, then training runs from them
# without the backbone (docs/algorithm.md §11).
rm -rf "$OUT/cache" "$OUT/train_cached"
mpirun --oversubscribe -np "$NP" "$BUILD/src/excel_precompute" --cache_dir="$OUT/cache" --data_root="$OUT/voc" \
  --data_split=train --model_clip="$OUT/clip/clip.jit.pt" --model_bank="$OUT/bank.h5" --model_bpe="$OUT/bpe.txt.gz" --model_crop=128 \
  --data_views=4 --cache_dtype=fp16
"$BUILD/data_tools/inspect_cache" --cache_dir="$OUT/cache" --sample=0 --output_dir="$OUT/cache_inspect"
stage_done "precompute + inspect"
mpirun --oversubscribe -np "$NP" "$BUILD/src/excel_train" --flagfile=configs/tiny_demo.flags \
  --cache_dir="$OUT/cache" --data_views=4 --train_batch=$(( 4 / NP )) --output_dir="$OUT/train_cached" \
  --metrics_port="$(( ${METRICS_PORT:-9400} + 2 ))"
stage_done "cached training"

# Online training (the reference's mode: a backbone pass and fresh augmentations every step) with
# validation: the same flags on a short schedule, because an online step costs several cached ones;
# it shows the mode runs, the scored checkpoint is the cached run's (README, "The main job").
rm -f "$OUT/train/checkpoint.h5"
mpirun --oversubscribe -np "$NP" "$BUILD/src/excel_train" --flagfile=configs/tiny_demo.flags \
  --data_root="$OUT/voc" --model_clip="$OUT/clip/clip.jit.pt" --model_bank="$OUT/bank.h5" --model_bpe="$OUT/bpe.txt.gz" --train_batch=$(( 4 / NP )) \
  --train_max_iters="${ONLINE_ITERS:-40}" --train_switch_iter="$(( ${ONLINE_ITERS:-40} / 2 ))" \
  --train_pred_target_iter="$(( ${ONLINE_ITERS:-40} * 3 / 4 ))" --train_log_every=10 --eval_every="${ONLINE_ITERS:-40}" --ckpt_every=0 \
  --output_dir="$OUT/train" --metrics_port="$(( ${METRICS_PORT:-9400} + 4 ))" ${TRAIN_FLAGS:-}
stage_done "online training"

# Evaluation (mpirun -np 2, confusion matrices summed over ranks): ExCEL's training-free
# pseudo-labels, then the trained checkpoint (dynamic-CAM pseudo-labels and multi-scale + flip
# segmentation) scored without and with the dense CRF in one pass. Tables, palette masks, CAM
# overlays and picture strips (image | CAM | pseudo-label | [segmentation |] ground truth) of the
# first ${STRIPS:-4} val images under $OUT/eval_*/.
rm -rf "$OUT/eval_training_free" "$OUT/eval_checkpoint"
mpirun --oversubscribe -np "$NP" "$BUILD/src/excel_eval" --data_root="$OUT/voc" --data_split=val \
  --model_clip="$OUT/clip/clip.jit.pt" --model_bank="$OUT/bank.h5" --model_bpe="$OUT/bpe.txt.gz" --model_crop=128 --eval_mode=training_free \
  --eval_strips="${STRIPS:-4}" --output_dir="$OUT/eval_training_free" --metrics_port="$(( ${METRICS_PORT:-9400} + 6 ))"
stage_done "training-free evaluation"
mpirun --oversubscribe -np "$NP" "$BUILD/src/excel_eval" --data_root="$OUT/voc" --data_split=val \
  --model_clip="$OUT/clip/clip.jit.pt" --model_bank="$OUT/bank.h5" --model_bpe="$OUT/bpe.txt.gz" --model_crop=128 --eval_mode=checkpoint \
  --eval_checkpoint="${EVAL_CHECKPOINT:-$OUT/train_cached/checkpoint.h5}" --eval_scales=128,96,160,192 --eval_crf \
  --eval_strips="${STRIPS:-4}" --output_dir="$OUT/eval_checkpoint" --metrics_port="$(( ${METRICS_PORT:-9400} + 6 ))"
stage_done "checkpoint evaluation"

echo "demo: overlays in $OUT/cams/overlays/, CAMs in $OUT/cams/cams.h5, cache in $OUT/cache/, checkpoints in $OUT/train_cached/ and $OUT/train/,"
echo "      eval tables, masks, overlays and strips in $OUT/eval_training_free/ and $OUT/eval_checkpoint/"

# Summary: the four scores side by side, printed and written to $OUT/summary.md.
echo
python3 scripts/eval_summary.py --training_free="$OUT/eval_training_free" --checkpoint="$OUT/eval_checkpoint" \
  --strips="$OUT/eval_checkpoint/strips/ (training-free: $OUT/eval_training_free/strips/)" --output="$OUT/summary.md"
echo "demo: summary in $OUT/summary.md"
