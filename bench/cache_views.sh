#!/usr/bin/env bash
# What the feature cache costs in accuracy: on the synthetic world, the same schedule trained online (fresh random crops every step, as the reference) and from caches of
# K = 1, 2 and 4 augmented views per image (excel_precompute --data_views=K, cycled per epoch by
# excel_train --data_views=K). Each checkpoint is scored on the val split by excel_eval (one scale,
# dynamic-CAM pseudo-labels and segmentation, no CRF). Step time = excel_train's mean step (no
# start-up, validation or checkpoints); cache size = bytes of the cache folder. Last line: JSON.
# Usage: bench/cache_views.sh [IMAGES=24] [ITERS=200] [CROP=128] [NP=1]
# CLIP=random (default: the random tiny CLIP, a quick check of the machinery) or CLIP=pretrained
# (the demo's world: large objects of 96-160 px images, 10 % val, and its contrastively pre-trained
# tiny CLIP, launch/run_demo.sh; the figures that mean something). That CLIP is pre-trained on 32
# images a step, as the demo's was until 2026-12-04 and the README's figures were measured;
# PRETRAIN_FLAGS=--train_batch=64 makes the demo's current one. TRAIN_SEED (0): the training
# and augmentation seed, to see how much of a difference is noise.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD_DIR:-build}
IMAGES=${1:-24}; ITERS=${2:-200}; CROP=${3:-128}; NP=${4:-1}
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
case ${CLIP:-random} in
  random) bash launch/make_tiny_world.sh "$BUILD" "$work" --data_num_images="$IMAGES" --data_seed=0 --model_seed=0 2>/dev/null ;;
  pretrained)
    bash launch/make_tiny_world.sh "$BUILD" "$work" --data_num_images="$IMAGES" --data_val_fraction=0.1 \
      --data_min_side=96 --data_max_side=160 --data_style=large --data_seed=0 --model_seed=0 --pretrain \
      --train_lr=3e-3 --train_warmup_iters=10 ${PRETRAIN_FLAGS:-} > "$work/world.log" 2>&1 || { tail -20 "$work/world.log" >&2; exit 1; } ;;
  *) echo "cache_views.sh: CLIP=${CLIP}: expected random or pretrained" >&2; exit 2 ;;
esac
export EXCEL_BPE_PATH="$work/bpe.txt.gz"
M=(--data_root="$work/voc" --model_clip="$work/clip/clip.jit.pt" --model_bank="$work/bank.h5" --model_crop="$CROP")
# A short schedule for ITERS steps (switch at 60 %, prediction targets at 80 %; the demo's own,
# configs/tiny_demo.flags, is longer), global batch 4.
T=(--data_train_split=train --model_adapter_dim=32 --train_batch=$(( 4 / NP )) --train_max_iters="$ITERS"
   --train_warmup_iters=$(( ITERS / 20 )) --train_switch_iter=$(( ITERS * 3 / 5 ))
   --train_pred_target_iter=$(( ITERS * 4 / 5 )) --train_lr=5e-4 --train_seed="${TRAIN_SEED:-0}" --eval_every=0 --ckpt_every=0
   --ckpt_resume=)

train() {  # name, flags... -> mean step seconds; log in $work/NAME.log
  local name=$1; shift
  mpirun -np "$NP" "$BUILD/src/excel_train" "${M[@]}" "${T[@]}" --output_dir="$work/$name" "$@" \
    > "$work/$name.log" 2>&1 || { tail -20 "$work/$name.log" >&2; exit 1; }
  sed -n 's/.*rank0 .*mean step \([0-9.e+-]*\) s.*/\1/p' "$work/$name.log" | tail -1
}
score() {  # name -> "seg_miou pl_miou" of its checkpoint on the val split
  local name=$1
  mpirun -np "$NP" "$BUILD/src/excel_eval" "${M[@]}" --data_split=val --eval_mode=checkpoint \
    --eval_checkpoint="$work/$name/checkpoint.h5" --eval_scales="$CROP" \
    --eval_save_masks=0 --eval_save_overlays=0 --output_dir="$work/eval_$name" > "$work/eval_$name.log" 2>&1 ||
    { tail -20 "$work/eval_$name.log" >&2; exit 1; }
  python3 -c "import json; t = json.load(open('$work/eval_$name/table.json'))['tables']
print(t['segmentation']['miou'], t['pseudo_label']['miou'])"
}

declare -A STEP BYTES MIOU
STEP[online]=$(train online --data_views=0); BYTES[online]=0; MIOU[online]=$(score online)
for k in 1 2 4; do
  mpirun -np "$NP" "$BUILD/src/excel_precompute" "${M[@]}" --data_split=train --cache_dir="$work/cache$k" \
    --data_views=$k --cache_dtype=fp16 --train_seed="${TRAIN_SEED:-0}" > "$work/precompute$k.log" 2>&1 ||
    { tail -20 "$work/precompute$k.log" >&2; exit 1; }
  BYTES[cache$k]=$(du -sb "$work/cache$k" | cut -f1)
  STEP[cache$k]=$(train cache$k --cache_dir="$work/cache$k" --data_views=$k)
  MIOU[cache$k]=$(score cache$k)
done

blas=$(sed -n 's/.*rank0 .* threads (\(.*\))$/\1/p' "$work/online.log" | head -1)
threads=$(sed -n 's/.*rank0 .*, \([0-9]*\) threads.*/\1/p' "$work/online.log" | head -1)
echo "machine: $(nproc) cores, $(sed -n 's/^model name[^:]*: //p' /proc/cpuinfo | head -1); $NP rank(s), $threads threads each; $blas"
echo "world: $IMAGES synthetic images ($(wc -l < "$work/voc/ImageSets/Segmentation/train.txt") train," \
  "$(wc -l < "$work/voc/ImageSets/Segmentation/val.txt") val), ${CLIP:-random} tiny CLIP, crop $CROP, $ITERS iterations, global batch 4, training seed ${TRAIN_SEED:-0}"
printf '%-8s %14s %10s %12s %12s\n' mode "cache bytes" "step s" "val seg mIoU" "val PL mIoU"
json="{\"bench\":\"cache_views\",\"clip\":\"${CLIP:-random}\",\"train_seed\":${TRAIN_SEED:-0},\"images\":$IMAGES,\"iters\":$ITERS,\"crop\":$CROP,\"ranks\":$NP,\"blas\":\"$blas\""
for m in online cache1 cache2 cache4; do
  read -r seg pl <<< "${MIOU[$m]}"
  printf '%-8s %14s %10.4f %12.2f %12.2f\n' "$m" "${BYTES[$m]}" "${STEP[$m]}" "$seg" "$pl"
  json+=",\"$m\":{\"cache_bytes\":${BYTES[$m]},\"step_s\":${STEP[$m]},\"val_seg_miou\":$seg,\"val_pl_miou\":$pl}"
done
echo "$json}"
