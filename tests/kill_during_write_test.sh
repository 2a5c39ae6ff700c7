#!/usr/bin/env bash
# Crash-safe writes under SIGKILL: training that checkpoints every iteration, and a feature-cache
# precompute, are killed at random moments (many of them inside a write) again and again. After
# every kill the file a reader would open is the previous complete one or the new complete one,
# never a part: checkpoint.h5 opens with its iteration never going back, shards are whole or absent.
# Then the run resumes to the end and its weights equal those of a run never killed.
set -euo pipefail
BUILD=$1
# shellcheck source=tests/test_lib.sh
source "$(dirname "$0")/test_lib.sh"
use_work_dir
PY=/usr/bin/python3
"$PY" -c "import h5py" 2>/dev/null || {
  [ "${CI:-}" = true ] && fail "CI=true but python3-h5py is missing (scripts/install_deps.sh)"
  echo "SKIP: python3-h5py is not installed"; exit 77
}
KILLS=${KILLS:-12}
make_tiny_data "$work" 10 96 128
T=("$BUILD/src/excel_train" --data_root="$work/voc" --model_clip="$work/clip/clip.jit.pt" --model_bank="$work/bank.h5"
   --data_train_split=train --data_val_split=val --model_crop=64 --model_adapter_dim=32 --train_batch=2
   --train_max_iters=80 --train_warmup_iters=2 --train_switch_iter=40 --train_pred_target_iter=60 --eval_every=0
   --ckpt_every=1 --train_log_every=10 --threads=1 --metrics_port=0)

# The iteration a checkpoint holds, or "bad" when it does not open as a whole checkpoint.
ckpt_iteration() {
  "$PY" - "$1" <<'PYEOF'
import sys, h5py
try:
    with h5py.File(sys.argv[1], "r") as f:
        n = len(f["params"])
        assert n > 0
        for k in f["params"]:
            f["params"][k][()]
        print(int(f.attrs["next_iteration"]))
except Exception as e:
    print("bad", e)
PYEOF
}

# 1. Checkpoints: kill -9 after a random 0.3-2.5 s, KILLS times, checking the file after each.
timeout 300 "${T[@]}" --output_dir="$work/full" > "$work/full.log" 2>&1 || { cat "$work/full.log"; fail "uninterrupted run"; }
last=0 inside=0
for k in $(seq 1 "$KILLS"); do
  setsid "${T[@]}" --output_dir="$work/killed" >> "$work/killed.log" 2>&1 &
  bg=$!
  sleep "$(awk -v s="$RANDOM" 'BEGIN { srand(s); printf "%.2f", 0.3 + 2.2 * rand() }')"
  ls "$work/killed"/*.tmp > /dev/null 2>&1 && inside=$((inside + 1))  # a write was under way
  kill -9 -- -"$bg" 2>/dev/null || true
  wait "$bg" 2>/dev/null || true
  bg=""
  [ -f "$work/killed/checkpoint.h5" ] || continue
  it=$(ckpt_iteration "$work/killed/checkpoint.h5")
  case "$it" in bad*) fail "kill $k left a checkpoint that does not open: $it" ;; esac
  [ "$it" -ge "$last" ] || fail "kill $k: the checkpoint went back from iteration $last to $it"
  last=$it
  [ "$it" -ge 80 ] && break
done
echo "checkpoints: $k kills ($inside with a temporary file present), every checkpoint whole, reached iteration $last"
timeout 300 "${T[@]}" --output_dir="$work/killed" >> "$work/killed.log" 2>&1 || { tail -20 "$work/killed.log"; fail "resume"; }
"$PY" - "$work/full/checkpoint.h5" "$work/killed/checkpoint.h5" <<'PYEOF' || fail "resumed weights differ"
import sys, h5py, numpy as np
a, b = h5py.File(sys.argv[1], "r"), h5py.File(sys.argv[2], "r")
d = max(float(np.max(np.abs(a["params"][k][()] - b["params"][k][()]))) for k in a["params"])
print(f"[equivalence] killed and resumed vs uninterrupted training, weights: largest difference {d} (bound 0)")
sys.exit(0 if d == 0 else 1)
PYEOF

# 2. Shards: the precompute killed at random moments, then run to the end; every shard file
# present after a kill is whole (its checksum is verified by inspect_cache at the end, and a
# partial one would carry the temporary name).
P=("$BUILD/src/excel_precompute" --data_root="$work/voc" --data_split=train --model_clip="$work/clip/clip.jit.pt"
   --model_bank="$work/bank.h5" --model_crop=64 --data_views=2 --cache_dtype=fp32 --model_batch=1 --threads=1
   --cache_dir="$work/cache")
for k in $(seq 1 4); do
  setsid "${P[@]}" >> "$work/pre.log" 2>&1 &
  bg=$!
  sleep "$(awk -v s="$RANDOM" 'BEGIN { srand(s); printf "%.2f", 0.5 + 2.0 * rand() }')"
  kill -9 -- -"$bg" 2>/dev/null || true
  wait "$bg" 2>/dev/null || true
  bg=""
  for s in "$work"/cache/shard-*.h5; do
    [ -f "$s" ] || continue
    "$PY" -c "import h5py,sys; h5py.File(sys.argv[1],'r')['feats'].shape" "$s" 2>/dev/null || fail "kill $k left a broken $s"
  done
done
timeout 300 "${P[@]}" >> "$work/pre.log" 2>&1 || { tail -20 "$work/pre.log"; fail "precompute after the kills"; }
"$BUILD/data_tools/inspect_cache" --cache_dir="$work/cache" > "$work/inspect.log" 2>&1 || { cat "$work/inspect.log"; fail "cache after kills does not verify"; }
echo "shards: 4 kills, every shard present after a kill opened whole; the final cache verifies"
echo PASS
