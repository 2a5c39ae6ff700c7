#!/usr/bin/env bash
# The same jobs on 2 simulated hosts x 2 ranks and on 1 host x 4 ranks (tests/multinode/hosts.sh:
# network and UTS namespaces on a private bridge, mpirun on mn1, an rsh agent for the others):
# excel_precompute writes byte-identical shards, excel_train from the cache and online ends within
# the world-size bound of docs/numerics.md, excel_eval (training_free) gives identical confusion
# matrices, and each host ran local ranks 0 and 1 under its own host name, with its threads.
#   multinode_test.sh BUILD_DIR
set -euo pipefail
BUILD=$1
# shellcheck source=tests/test_lib.sh
source "$(dirname "$0")/test_lib.sh"
# shellcheck source=tests/multinode/hosts.sh
source "$(dirname "$0")/multinode/hosts.sh"
PY=/usr/bin/python3
start_s=$(date +%s)

mn_require
work=$(mktemp -d)
mn_on_exit() { rm -rf "$work"; }
mn_setup 2 "$work/mn"
mn_hostfile "$work/hosts2x2" 2 2
mn_hostfile "$work/hosts1x4" 4
echo "simulated hosts ${MN_HOSTS[*]} on $MN_NET (namespaces $(mn_ns mn1), $(mn_ns mn2); bridge $MN_BRIDGE in ${MN_PREFIX}sw)"

make_tiny_data "$work" 8 80 120
export OMP_NUM_THREADS=1
M=(--data_root="$work/voc" --model_clip="$work/clip/clip.jit.pt" --model_bank="$work/bank.h5" --model_crop=64 --threads=1)
P=("$BUILD/src/excel_precompute" "${M[@]}" --data_split=train --data_views=1 --cache_dtype=fp32 --model_batch=1)
T=("$BUILD/src/excel_train" "${M[@]}" --data_train_split=train --data_val_split=val --model_adapter_dim=32
   --train_batch=1 --train_max_iters=6 --train_warmup_iters=2 --train_switch_iter=100 --train_pred_target_iter=100
   --train_lr=1e-4 --eval_every=1000 --ckpt_every=1000 --train_log_every=1)
E=("$BUILD/src/excel_eval" "${M[@]}" --data_split=val --eval_mode=training_free --eval_scales=64)

# run LAYOUT NAME CMD...: CMD on 4 ranks over the host file of LAYOUT (2x2 or 1x4), mpirun on mn1.
run() {
  local layout=$1 name=$2
  shift 2
  local t0=$SECONDS
  mn_exec mn1 timeout --foreground 300 mpirun --hostfile "$work/hosts$layout" -np 4 --bind-to none "${MN_MPIRUN_ARGS[@]}" \
    "$@" > "$work/$name-$layout.log" 2>&1 || { tail -40 "$work/$name-$layout.log"; fail "$name on $layout"; }
  echo "$name on $layout: $((SECONDS - t0)) s"
}

# placement LOG LAYOUT: the tools' start line "rank R of 4, local rank L of S on HOST, T threads".
placement() {
  "$PY" - "$1" "$2" <<'PYEOF'
import re, sys
log, layout = open(sys.argv[1]).read(), sys.argv[2]
ranks = {}
for m in re.finditer(r": rank (\d+) of (\d+), local rank (\d+) of (\d+) on (\S+), (\d+) threads", log):
    r, w, l, s, host, t = m.groups()
    ranks[int(r)] = (host, int(l), int(s), int(t))
assert sorted(ranks) == [0, 1, 2, 3], f"start lines of ranks {sorted(ranks)}"
hosts = {}
for r, (host, l, s, t) in sorted(ranks.items()):
    hosts.setdefault(host, []).append(l)
    assert t == 1, f"rank {r}: {t} threads, expected --threads=1"
want = {"2x2": {"mn1": [0, 1], "mn2": [0, 1]}, "1x4": {"mn1": [0, 1, 2, 3]}}[layout]
got = {h: sorted(ls) for h, ls in hosts.items()}
assert got == want, f"{layout}: local ranks per host {got}, expected {want}"
for r, (host, l, s, t) in ranks.items():
    assert s == len(want[host]), f"rank {r}: local size {s} on {host}"
print(f"{layout}: " + "; ".join(f"{h} local ranks {got[h]}" for h in sorted(got))
      + f"; {len(got)} distinct host name(s), 1 thread per rank")
PYEOF
}

compare_ckpt() {  # CKPT_A CKPT_B WHAT
  "$PY" - "$1" "$2" "$3" <<'PYEOF'
import sys, h5py, numpy as np
a, b, tol = h5py.File(sys.argv[1], "r"), h5py.File(sys.argv[2], "r"), 1e-5
assert a.attrs["next_iteration"] == b.attrs["next_iteration"] == 6
assert sorted(a["params"]) == sorted(b["params"])
worst, n = 0.0, 0
for name in a["params"]:
    worst = max(worst, float(np.abs(a["params"][name][()] - b["params"][name][()]).max()))
    n += 1
print(f"[equivalence] multinode 2x2 vs 1x4 {sys.argv[3]}: largest difference {worst:.3g} (bound {tol:g}) over {n} parameters")
assert worst <= tol, worst
PYEOF
}

same_tables() {  # TABLE_A TABLE_B
  "$PY" - "$1" "$2" <<'PYEOF'
import json, sys
a, b = (json.load(open(p)) for p in sys.argv[1:3])
assert a["images"] == b["images"] and a["tables"] and sorted(a["tables"]) == sorted(b["tables"])
for name in sorted(a["tables"]):
    ca, cb = a["tables"][name]["confusion_matrix"], b["tables"][name]["confusion_matrix"]
    cells = sum(x != y for x, y in zip(ca, cb)) + abs(len(ca) - len(cb))
    print(f"[equivalence] multinode 2x2 vs 1x4 eval training_free, {name}: largest difference {cells} (bound 0) differing confusion cells")
    assert ca == cb and sum(ca) > 0, name
PYEOF
}

for layout in 2x2 1x4; do
  run $layout precompute "${P[@]}" --cache_dir="$work/cache-$layout"
  placement "$work/precompute-$layout.log" $layout || fail "precompute placement on $layout"
done
n=0
for s in "$work"/cache-1x4/shard-*.h5; do
  other="$work/cache-2x2/$(basename "$s")"
  differing=$(cmp -l "$s" "$other" 2>&1 | wc -l) || true
  echo "[equivalence] multinode 2x2 vs 1x4 precompute, $(basename "$s"): largest difference $differing (bound 0) differing bytes"
  cmp -s "$s" "$other" || fail "$(basename "$s") differs between 2x2 and 1x4"
  n=$((n + 1))
done
[ "$n" = 4 ] || fail "expected 4 shards, found $n"
shards2x2=("$work"/cache-2x2/shard-*.h5)
[ ${#shards2x2[@]} = 4 ] || fail "2x2 run wrote ${#shards2x2[@]} shards, expected 4"

for layout in 2x2 1x4; do
  bytes0=$(mn_bytes mn2)
  run $layout train_cached "${T[@]}" --cache_dir="$work/cache-$layout" --output_dir="$work/train_cached-$layout"
  placement "$work/train_cached-$layout.log" $layout || fail "cached training placement on $layout"
  [ $layout = 2x2 ] && crossed=$(($(mn_bytes mn2) - bytes0))
done
# The gradients really crossed the simulated network: mn2's ranks sent and received at least one
# full set of gradients per step (ring all-reduce: each host moves about the gradient size a step).
"$PY" - "$work/train_cached-2x2/checkpoint.h5" "$crossed" <<'PYEOF' || fail "too little traffic between the hosts"
import sys, h5py
f, crossed = h5py.File(sys.argv[1], "r"), int(sys.argv[2])
grad_bytes = sum(f["params"][n].size * 4 for n in f["params"])
print(f"mn2 moved {crossed} bytes over the bridge during 6 steps of 2x2 cached training ({grad_bytes} gradient bytes a step)")
assert crossed >= 6 * grad_bytes, crossed
PYEOF
compare_ckpt "$work/train_cached-2x2/checkpoint.h5" "$work/train_cached-1x4/checkpoint.h5" "cached training" \
  || fail "cached training: 2x2 and 1x4 differ beyond the bound"

for layout in 2x2 1x4; do
  run $layout train_online "${T[@]}" --output_dir="$work/train_online-$layout"
  placement "$work/train_online-$layout.log" $layout || fail "online training placement on $layout"
done
compare_ckpt "$work/train_online-2x2/checkpoint.h5" "$work/train_online-1x4/checkpoint.h5" "online training" \
  || fail "online training: 2x2 and 1x4 differ beyond the bound"

for layout in 2x2 1x4; do
  run $layout eval "${E[@]}" --output_dir="$work/eval-$layout"
  placement "$work/eval-$layout.log" $layout || fail "eval placement on $layout"
done
same_tables "$work/eval-2x2/table.json" "$work/eval-1x4/table.json" || fail "eval: 2x2 and 1x4 tables differ"

echo "PASS after $(($(date +%s) - start_s)) s"
