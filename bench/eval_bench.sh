#!/usr/bin/env bash
# Evaluation throughput (excel_eval, one process) at ViT-B/16 size on VOC-sized synthetic images
# (375-500 px): training-free pseudo-labels with and without CRF, and a checkpoint's
# segmentation at one scale, at the four scales of §10.2 with flips, and with CRF.
# Images/s = images / the rank's evaluation loop time (model loading excluded). Last line: JSON.
# Usage: bench/eval_bench.sh [IMAGES=4] [VITB16=1]
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD_DIR:-build}
IMAGES=${1:-4}; VITB16=${2:-1}
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
CROP=320; SCALES=320,224,384,480; SIZE=(--model_vit_b16)
[ "$VITB16" = 1 ] || { CROP=128; SCALES=128,96,160,192; SIZE=(); }
# val_fraction 0.5 of 2*IMAGES images gives IMAGES validation images.
bash launch/make_tiny_world.sh "$BUILD" "$work" --data_num_images=$(( 2 * IMAGES )) --data_val_fraction=0.5 \
  --data_min_side=375 --data_max_side=500 "${SIZE[@]}" 2>/dev/null
export EXCEL_BPE_PATH="$work/bpe.txt.gz"
M=(--data_root="$work/voc" --model_clip="$work/clip/clip.jit.pt" --model_bank="$work/bank.h5" --model_crop=$CROP)
# A checkpoint of the heads after two steps (the weights do not change the cost).
mpirun -np 1 "$BUILD/src/excel_train" "${M[@]}" --data_train_split=train --train_batch=1 --train_max_iters=2 \
  --eval_every=0 --output_dir="$work/run" > "$work/train.log" 2>&1
# The BLAS kernel and thread counts the tools ran with (logged by every tool at start).
blas=$(sed -n 's/.* threads (\(.*\))$/\1/p' "$work/train.log" | head -1)
echo "compute: $blas"
run() {  # name, flags... -> images/s
  local name=$1; shift
  local secs
  secs=$(mpirun -np 1 "$BUILD/src/excel_eval" "${M[@]}" --data_split=val --output_dir="$work/$name" \
    --eval_save_masks=0 --eval_save_overlays=0 "$@" 2>&1 | sed -n 's/.*this rank took \([0-9.e+-]*\) s.*/\1/p')
  python3 -c "print(f'{$IMAGES / $secs:.4f}')"
}
declare -A R
R[training_free]=$(run tf --eval_mode=training_free)
R[training_free_crf]=$(run tfc --eval_mode=training_free --eval_crf)
R[checkpoint_single_scale]=$(run c1 --eval_mode=checkpoint --eval_checkpoint="$work/run/checkpoint.h5" --eval_scales=$CROP)
R[checkpoint_multiscale]=$(run cm --eval_mode=checkpoint --eval_checkpoint="$work/run/checkpoint.h5" --eval_scales=$SCALES)
R[checkpoint_multiscale_crf]=$(run cmc --eval_mode=checkpoint --eval_checkpoint="$work/run/checkpoint.h5" --eval_scales=$SCALES --eval_crf)
json="{\"bench\":\"eval\",\"blas\":\"$blas\",\"images\":$IMAGES,\"crop\":$CROP,\"vit_b16\":$VITB16"
for k in training_free training_free_crf checkpoint_single_scale checkpoint_multiscale checkpoint_multiscale_crf; do
  echo "$k: ${R[$k]} images/s"
  json+=",\"${k}_images_per_s\":${R[$k]}"
done
echo "$json}"
