#!/usr/bin/env bash
# A non-finite step on one of 2 real ranks is skipped on every rank: rank 1's loss is made NaN at
# iteration 2 (excel_train --fault_nonfinite_step); every rank logs the skip, training goes on, and
# the weights and AdamW state after the skipped step equal those before it, bit for bit. Control:
# the same step without the fault changes the weights (so the comparison can fail).
#   nonfinite_skip_test.sh BUILD_DIR [DEVICE [BACKEND]]   (cpu mpi by default; cuda nccl on a GPU)
# env NP: ranks (2; NCCL takes one rank per GPU, so 1 on a one-GPU node: rank 0 gets the NaN).
# Needs PYTHON (/usr/bin/python3) with h5py for the weights (without it: the logs only, and exit 77;
# a failure under CI=true).
set -euo pipefail
BUILD=$1 DEVICE=${2:-cpu} BACKEND=${3:-mpi} NP=${NP:-2}
BAD=$((NP > 1 ? 1 : 0))
# shellcheck source=tests/test_lib.sh
source "$(dirname "$0")/test_lib.sh"
use_work_dir
PY=${PYTHON:-/usr/bin/python3}

make_tiny_data "$work" 8 96 140
# No warm-up: iteration 2 runs at the full learning rate, so a step taken moves every weight.
T=("$BUILD/src/excel_train" --data_root="$work/voc" --model_clip="$work/clip/clip.jit.pt" --model_bank="$work/bank.h5"
   --data_train_split=train --data_val_split=val --model_crop=64 --model_adapter_dim=16 --train_batch=2
   --train_max_iters=6 --train_warmup_iters=0 --train_switch_iter=100 --train_pred_target_iter=100 --eval_every=0
   --ckpt_every=0 --train_log_every=1 --threads=1 --device="$DEVICE" --comm_backend="$BACKEND" --ckpt_resume=auto)
train() {  # NAME ARGS...: NP ranks, log in $work/NAME.log
  local name=$1
  shift
  timeout 300 mpirun -np "$NP" "${T[@]}" "$@" > "$work/$name.log" 2>&1 || { tail -30 "$work/$name.log"; fail "excel_train, run '$name'"; }
}

train before --output_dir="$work/before" --train_stop_after=2  # iterations 0 and 1
cp -r "$work/before" "$work/skipped"
cp -r "$work/before" "$work/taken"
train skipped --output_dir="$work/skipped" --train_stop_after=1 --fault_nonfinite_step=2 --fault_nonfinite_rank=$BAD
train taken --output_dir="$work/taken" --train_stop_after=1
grep -q "collectives over $BACKEND" "$work/skipped.log" || { cat "$work/skipped.log"; fail "not over $BACKEND"; }
grep -m1 -o "rank0 .*placement.cpp.*" "$work/skipped.log" | sed -E 's/^rank0 +[0-9]+ placement.cpp:[0-9]+\] /rank 0: /'
grep -m1 -o "collectives over .*" "$work/skipped.log"
for r in $(seq 0 $((NP - 1))); do
  # (the count is of ranks holding a non-finite value: rank 1's NaN reaches rank 0 through the step's cross-rank parts)
  grep -Eq "rank$r .*iteration 2: non-finite loss or gradient on [0-9]+ rank\(s\); step skipped on every rank" \
    "$work/skipped.log" || { cat "$work/skipped.log"; fail "rank $r did not skip iteration 2"; }
done
grep -q "step skipped" "$work/taken.log" && fail "a step was skipped without the fault"
grep -q "skipped steps 1;" "$work/skipped.log" || fail "the run does not count one skipped step"
echo "iteration 2: NaN loss on rank $BAD of $NP; every rank logged 'step skipped on every rank' ($DEVICE, $BACKEND):"
grep -o "rank[0-9]* .*iteration 2: non-finite.*" "$work/skipped.log" | sed -E 's/ +[0-9]+ trainer.cpp:[0-9]+\]/:/; s/^/  /'

# Weights and AdamW state: skipped == before (bit for bit), taken != before.
if ! "$PY" -c 'import h5py, numpy' 2>/dev/null; then
  [ "${CI:-}" = true ] && fail "CI=true but $PY lacks h5py or numpy (python3-h5py, python3-numpy) for the weights check"
  echo "SKIP weights check: $PY lacks h5py or numpy (the logs above passed)"
  exit 77
fi
"$PY" - "$work/before/checkpoint.h5" "$work/skipped/checkpoint.h5" "$work/taken/checkpoint.h5" <<'PYEOF' \
  || fail "weights across the skipped step"
import sys, h5py, numpy as np
def load(p):
    f = h5py.File(p, "r")
    out = {}
    f.visititems(lambda k, v: out.__setitem__(k, v[()]) if isinstance(v, h5py.Dataset) else None)
    return out, dict(f.attrs)
(b, ab), (s, as_), (t, at) = (load(p) for p in sys.argv[1:4])
assert ab["next_iteration"] == 2 and as_["next_iteration"] == 3 == at["next_iteration"], (ab, as_, at)
assert as_["optimizer_steps"] == ab["optimizer_steps"], "the optimizer stepped"
assert set(b) == set(s) == set(t) and any(k.startswith("params/") for k in b)
changed = [k for k in b if not np.array_equal(b[k], s[k])]
moved = sum(1 for k in b if k.startswith("params/") and not np.array_equal(b[k], t[k]))
n = sum(1 for k in b if k.startswith("params/"))
print(f"skipped step: {len(b)} datasets (params, Adam moments) identical to before: {not changed}; "
      f"control step without the fault moved {moved} of {n} parameters")
assert not changed, f"changed across the skipped step: {changed[:5]}"
assert moved > 0, "the control step moved no weight"
PYEOF
echo "PASS"
