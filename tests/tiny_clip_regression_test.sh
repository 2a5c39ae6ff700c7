#!/usr/bin/env bash
# The method end to end on a small VOC-like world (--data_style=large) with a pre-trained tiny CLIP
# (data_tools/pretrain_tiny_clip, 200 steps; docs/tiny_clip.md): fails when a stage is miswired.
# (1) ExCEL's training-free pseudo-labels on the val split must clear a floor above what a random
# CLIP scores there; (2) after a short training, the dynamic-CAM pseudo-labels of the checkpoint
# must not fall more than DYN_SLACK (default 3) below the training-free ones (see the note at the
# end). Seeded throughout: the same build gives the same numbers. Fails early when the floor is missed.
set -euo pipefail
BUILD=$1
# shellcheck source=tests/test_lib.sh
source "$(dirname "$0")/test_lib.sh"
use_work_dir
PY=/usr/bin/python3
# On this split a random CLIP (make_random_clip) scores 26.8, the pre-trained one 36.3-57.7 over the
# OpenBLAS kernels (below); the floor is about halfway between a random CLIP and the lowest kernel.
TF_FLOOR=${TF_FLOOR:-32}
DYN_SLACK=${DYN_SLACK:-3}  # derived below, from the spread over OpenBLAS kernels

start=$(date +%s)
bash "$SRC_DIR/launch/make_tiny_world.sh" "$BUILD" "$work" --data_num_images=40 --data_val_fraction=0.5 \
  --data_style=large --data_seed=0 --model_seed=0 --pretrain --train_max_iters="${PRETRAIN_ITERS:-200}" \
  --train_lr=3e-3 --train_warmup_iters=10 ${PRETRAIN_FLAGS:-} >"$work/world.log" 2>&1 \
  || { tail -5 "$work/world.log"; fail "making the world and pre-training"; }
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

timeout 600 "$BUILD/src/excel_train" "${M[@]}" --data_train_split=train --data_val_split=val \
  --model_adapter_dim=32 --train_batch=4 --train_max_iters=80 --train_warmup_iters=5 --train_switch_iter=40 \
  --train_pred_target_iter=60 --train_lr=5e-4 --eval_every=1000 --ckpt_every=1000 --train_log_every=20 \
  --output_dir="$work/run" >"$work/train.log" 2>&1 || { tail -5 "$work/train.log"; fail "training"; }
"$BUILD/src/excel_eval" "${M[@]}" --data_split=val --eval_mode=checkpoint --eval_checkpoint="$work/run/checkpoint.h5" \
  --output_dir="$work/ck" >"$work/ck.log" 2>&1 || { tail -5 "$work/ck.log"; fail "checkpoint evaluation"; }
dyn=$(miou "$work/ck/table.json" pseudo_label)
seg=$(miou "$work/ck/table.json" segmentation)
echo "after training: dynamic-CAM pseudo-label mIoU $dyn, segmentation mIoU $seg ($(($(date +%s) - start)) s)"

# The method claims the dynamic-CAM pseudo-labels beat the training-free ones. Here (20 training
# images, 80 steps) the outcome depends on float rounding: the OpenBLAS kernel changes the
# pre-training's trajectory, and with it both scores. Measured with one build (training-free ->
# dynamic-CAM): Haswell and Zen 51.1 -> 67.0, Sandybridge 57.7 -> 56.3 (-1.4), SkylakeX 36.3 -> 46.2.
# The slack is the largest loss (1.4) rounded up to the next point plus one: 3. (With 300
# pre-training steps SkylakeX's CLIP scored 30.8, and on the small world with 200 steps 27.3: both
# under the floor; hence this world and 200 steps.) What it catches is a training that wrecks the
# pseudo-labels (a miswired LVC or dynamic pass), not a missing gain. What it cannot catch: the
# refinement fed the first block's attention, which scores higher on this world (docs/tiny_clip.md).
"$PY" -c "import sys; sys.exit(0 if $dyn >= $tf - $DYN_SLACK else 1)" \
  || fail "training made the pseudo-labels worse: dynamic-CAM mIoU $dyn < training-free $tf - $DYN_SLACK"
echo "PASS"
