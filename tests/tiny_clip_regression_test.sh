#!/usr/bin/env bash
# The method end to end on a small VOC-like world (--data_style=large) with a pre-trained tiny CLIP
# (data_tools/pretrain_tiny_clip, 200 steps; docs/tiny_clip.md): fails when a stage is miswired.
# (1) ExCEL's training-free pseudo-labels on the val split must clear a floor above what a random
# CLIP scores there, and, when the pre-training made the recorded CLIP (the usual case: it runs on
# pinned kernels, below), must score the recorded value within TF_BAND; (2) after a short training,
# the dynamic-CAM pseudo-labels of the checkpoint must beat the training-free ones, as the method
# claims. Seeded throughout. Fails early when (1) fails.
set -euo pipefail
BUILD=$1
# shellcheck source=tests/test_lib.sh
source "$(dirname "$0")/test_lib.sh"
use_work_dir
PY=/usr/bin/python3
# On this split a random CLIP (make_random_clip) scores 26.8; the pre-trained one scored 36.3-57.7
# when the pre-training ran on whichever OpenBLAS kernel the machine picked; the floor is about
# halfway between a random CLIP and the lowest of those.
TF_FLOOR=${TF_FLOOR:-32}
# make_tiny_world.sh pre-trains on OpenBLAS's Haswell kernel and ATen's AVX2 code wherever the CPU
# has them, so with Debian bookworm's LibTorch 1.13 and OpenBLAS 0.3.21 every such machine makes
# this CLIP (the MD5 of its clip.state_dict.pt), which scores TF_RECORDED. With the CLIP fixed, the
# score did not move in the second decimal when everything after the pre-training ran under
# Sandybridge, Haswell, Zen, SkylakeX or Cooperlake. Miswirings of the attention that feeds the
# refinement move it (measured, docs/tiny_clip.md): first block only 62.06, last block only 43.96,
# the last five 41.62, the last three 48.58, the first five of the last six 49.59 (1.49 below). The
# band is half of that smallest move, so a rounding change and the nearest miswiring are equally far
# from its edges. Another LibTorch or OpenBLAS build, or a CPU without AVX2, makes another CLIP
# (the pre-training is chaotic in its rounding): then only the floor applies, except under CI=true.
CLIP_MD5=8f042ee3f3453deafae652bf522945fc
TF_RECORDED=51.08
TF_BAND=0.75

start=$(date +%s)
bash "$SRC_DIR/launch/make_tiny_world.sh" "$BUILD" "$work" --data_num_images=40 --data_val_fraction=0.5 \
  --data_style=large --data_seed=0 --model_seed=0 --pretrain --train_max_iters="${PRETRAIN_ITERS:-200}" \
  --train_lr=3e-3 --train_warmup_iters=10 ${PRETRAIN_FLAGS:-} >"$work/world.log" 2>&1 \
  || { tail -5 "$work/world.log"; fail "making the world and pre-training"; }
recorded_clip=0
if [ "$(md5sum <"$work/clip/clip.state_dict.pt" | cut -d' ' -f1)" = "$CLIP_MD5" ]; then
  recorded_clip=1
elif [ "${CI:-}" = true ]; then
  fail "the pre-trained CLIP is not the recorded one (MD5 $CLIP_MD5): CI must check the recorded score"
else
  echo "note: the pre-trained CLIP is not the recorded one (another LibTorch or OpenBLAS build, a CPU without AVX2, or PRETRAIN_ITERS / PRETRAIN_FLAGS set): checking the floor only"
fi
export EXCEL_BPE_PATH="$work/bpe.txt.gz"
M=(--data_root="$work/voc" --model_clip="$work/clip/clip.jit.pt" --model_bank="$work/bank.h5" --model_crop=128
  --threads=1 --metrics_port=0)

miou() {  # TABLE_JSON TABLE_NAME: mIoU over the classes with ground truth
  "$PY" - "$1" "$2" <<'PYEOF'
import json, math, sys
t = json.load(open(sys.argv[1]))["tables"][sys.argv[2]]["classes"]
v = [c["iou"] for c in t if c["iou"] != "nan" and not (isinstance(c["iou"], float) and math.isnan(c["iou"]))]
print(f"{sum(v) / len(v):.2f}")
PYEOF
}

"$BUILD/src/excel_eval" "${M[@]}" --data_split=val --eval_mode=training_free --output_dir="$work/tf" \
  >"$work/tf.log" 2>&1 || { tail -5 "$work/tf.log"; fail "training-free evaluation"; }
tf=$(miou "$work/tf/table.json" pseudo_label)
echo "training-free pseudo-label mIoU on val: $tf (floor $TF_FLOOR) ($(($(date +%s) - start)) s)"
"$PY" -c "import sys; sys.exit(0 if $tf >= $TF_FLOOR else 1)" \
  || fail "training-free pseudo-label mIoU $tf is below the floor $TF_FLOOR (a random CLIP's level: a stage is miswired)"
if [ "$recorded_clip" = 1 ]; then
  "$PY" -c "import sys; sys.exit(0 if abs($tf - $TF_RECORDED) <= $TF_BAND else 1)" \
    || fail "training-free pseudo-label mIoU $tf differs from the recorded CLIP's $TF_RECORDED by more than $TF_BAND: a stage before the pseudo-labels (the attention that feeds the refinement, the CAM, the bank, PAR) computes something else"
  echo "the recorded CLIP's score: $TF_RECORDED +- $TF_BAND"
fi

timeout 600 "$BUILD/src/excel_train" "${M[@]}" --data_train_split=train --data_val_split=val \
  --model_adapter_dim=32 --train_batch=4 --train_max_iters=80 --train_warmup_iters=5 --train_switch_iter=40 \
  --train_pred_target_iter=60 --train_lr=5e-4 --eval_every=1000 --ckpt_every=1000 --train_log_every=20 \
  --output_dir="$work/run" >"$work/train.log" 2>&1 || { tail -5 "$work/train.log"; fail "training"; }
"$BUILD/src/excel_eval" "${M[@]}" --data_split=val --eval_mode=checkpoint --eval_checkpoint="$work/run/checkpoint.h5" \
  --eval_scales=128,96,160,192 --output_dir="$work/ck" >"$work/ck.log" 2>&1 || { tail -5 "$work/ck.log"; fail "checkpoint evaluation"; }
dyn=$(miou "$work/ck/table.json" pseudo_label)
seg=$(miou "$work/ck/table.json" segmentation)
echo "after training: dynamic-CAM pseudo-label mIoU $dyn, segmentation mIoU $seg ($(($(date +%s) - start)) s)"

# The method claims the dynamic-CAM pseudo-labels beat the training-free ones. With the recorded
# CLIP they did by 15.9 points under every kernel above (51.08 -> 66.98-67.01). The CLIPs that the
# machines' own kernels made before the pre-training was pinned moved them by -1.4 (Sandybridge:
# 57.7 -> 56.3) to +15.9 points; for such a CLIP the check allows the largest loss measured, rounded
# up to the next point, plus one (3), so it still catches a training that wrecks the pseudo-labels.
slack=0
[ "$recorded_clip" = 1 ] || slack=3
"$PY" -c "import sys; sys.exit(0 if $dyn > $tf - $slack else 1)" \
  || fail "training did not improve the pseudo-labels: dynamic-CAM mIoU $dyn, training-free $tf (slack $slack)"
echo "PASS"
