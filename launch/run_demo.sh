#!/usr/bin/env bash
# The main job on the embedded default, no downloads: synthetic VOC-layout data + a random tiny
# CLIP -> attribute bank -> `mpirun -np 2` static CAMs (heat-map overlays + cams.h5) -> ExCEL
# training (configs/tiny_demo.flags) with validation. Every process serves Prometheus metrics
# on 127.0.0.1: CAM ranks on ${METRICS_PORT:-9400}+local_rank, the trainer on +2.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD_DIR:-build}
OUT=${OUT_DIR:-demo_out}
NP=${NP:-2}
SHARED=${EXCEL_SHARED_DIR:-../shared}

if [ ! -x "$BUILD/src/excel_cam_demo" ]; then
  cmake -S . -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release
  cmake --build "$BUILD" -j "$(nproc)"
fi
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
mkdir -p "$OUT"

"$BUILD/data_tools/make_synthetic_voc" --output="$OUT/voc" --num_images="${NUM_IMAGES:-24}" --seed=0
"$BUILD/data_tools/make_random_clip" --output_dir="$OUT/clip" --seed=0
"$BUILD/data_tools/build_attribute_bank" --descriptions="$SHARED/data/text/voc_descriptions.json" \
  --checkpoint="$OUT/clip/clip.jit.pt" --clusters=16 --output="$OUT/bank.h5"

mpirun --oversubscribe -np "$NP" "$BUILD/src/excel_cam_demo" --data_root="$OUT/voc" --split=train \
  --checkpoint="$OUT/clip/clip.jit.pt" --bank="$OUT/bank.h5" --crop=320 --output_dir="$OUT/cams" \
  --metrics_port="${METRICS_PORT:-9400}" --metrics_linger_s="${METRICS_LINGER_S:-0}"

rm -f "$OUT/train/checkpoint.h5"
mpirun --oversubscribe -np 1 "$BUILD/src/excel_train" --flagfile=configs/tiny_demo.flags \
  --data_root="$OUT/voc" --model_clip="$OUT/clip/clip.jit.pt" --model_bank="$OUT/bank.h5" \
  --ckpt_dir="$OUT/train" --metrics_port="$(( ${METRICS_PORT:-9400} + 2 ))" ${TRAIN_FLAGS:-}

echo "demo: overlays in $OUT/cams/overlays/, CAMs in $OUT/cams/cams.h5, training checkpoint in $OUT/train/"
