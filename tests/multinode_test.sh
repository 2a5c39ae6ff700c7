#!/usr/bin/env bash
# The same jobs on 2 simulated hosts x 2 ranks and on 1 host x 4 ranks (tests/multinode/hosts.sh:
# network and UTS namespaces on a private bridge, mpirun on mn1, an rsh agent for the others):
# excel_precompute writes byte-identical shards, excel_train from the cache and online ends within
# the world-size bound of docs/numerics.md, excel_eval (training_free) gives identical confusion
# matrices, and each host ran local ranks 0 and 1 under its own host name, with its threads; the
# 2x2 online job's metrics are found through one target file per host by a real Prometheus; an
# uneven 3+1 layout sizes each rank's threads by its host's local ranks (--threads=0).
#   multinode_test.sh BUILD_DIR
set -euo pipefail
BUILD=$1
# shellcheck source=tests/test_lib.sh
source "$(dirname "$0")/test_lib.sh"
# shellcheck source=tests/multinode/hosts.sh
source "$(dirname "$0")/multinode/hosts.sh"
# shellcheck source=tests/multinode/jobs.sh
source "$(dirname "$0")/multinode/jobs.sh"
# shellcheck source=tests/multinode/scrape.sh
source "$(dirname "$0")/multinode/scrape.sh"
PY=$MN_PY
start_s=$(date +%s)

mn_require
work=$(mktemp -d)
MN_PROM_PID=""
mn_on_exit() {
  local rc=0
  if [ -n "$MN_PROM_PID" ]; then mn_stop_pids "$MN_PROM_PID" || rc=1; fi
  rm -rf "$work"
  return $rc
}
mn_setup 2 "$work/mn"
mn_hostfile "$work/hosts2x2" 2 2
mn_hostfile "$work/hosts1x4" 4
mn_hostfile "$work/hosts3+1" 3 1
echo "simulated hosts ${MN_HOSTS[*]} on $MN_NET (namespaces $(mn_ns mn1), $(mn_ns mn2); bridge $MN_BRIDGE in ${MN_PREFIX}sw)"

make_tiny_data "$work" 8 80 120
export OMP_NUM_THREADS=1
M=(--data_root="$work/voc" --model_clip="$work/clip/clip.jit.pt" --model_bank="$work/bank.h5" --model_crop=64 --threads=1)
P=("$BUILD/src/excel_precompute" "${M[@]}" --data_split=train --data_views=1 --cache_dtype=fp32 --model_batch=1)
T=("$BUILD/src/excel_train" "${M[@]}" --data_train_split=train --data_val_split=val --model_adapter_dim=32
   --train_batch=1 --train_max_iters=6 --train_warmup_iters=2 --train_switch_iter=100 --train_pred_target_iter=100
   --train_lr=1e-4 --eval_every=1000 --ckpt_every=1000 --train_log_every=1)
E=("$BUILD/src/excel_eval" "${M[@]}" --data_split=val --eval_mode=training_free --eval_scales=64)

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
  mn_job $layout precompute "${P[@]}" --cache_dir="$work/cache-$layout"
  mn_placement "$work/precompute-$layout.log" $layout || fail "precompute placement on $layout"
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
  mn_job $layout train_cached "${T[@]}" --cache_dir="$work/cache-$layout" --output_dir="$work/train_cached-$layout"
  mn_placement "$work/train_cached-$layout.log" $layout || fail "cached training placement on $layout"
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
mn_compare_ckpt "$work/train_cached-2x2/checkpoint.h5" "$work/train_cached-1x4/checkpoint.h5" 6 "2x2 vs 1x4 cached training" \
  || fail "cached training: 2x2 and 1x4 differ beyond the bound"

# The 2x2 online job also serves metrics on each host's own address (--metrics_bind=host: mnI's
# address, from its /etc/hosts), scraped by a real Prometheus in the root namespace through one
# target file per host ($work/sd stands for a folder shared by the nodes); the ranks linger long
# enough for discovery and a few scrapes.
mn_prometheus_start
JOB=mn$$
MX=(--metrics_port=9700 --metrics_bind=host --metrics_sd_dir="$work/sd" --metrics_job_id="$JOB" --metrics_linger_s=15)
t0=$SECONDS
mn_job_bg 2x2 train_online "${T[@]}" --output_dir="$work/train_online-2x2" "${MX[@]}"
mn_watch_targets $JOB train 9700 || fail "target files: one per host with its ranks, discovered by Prometheus"
echo "train_online on 2x2: $((SECONDS - t0)) s"
mn_job 1x4 train_online "${T[@]}" --output_dir="$work/train_online-1x4"
for layout in 2x2 1x4; do
  mn_placement "$work/train_online-$layout.log" $layout || fail "online training placement on $layout"
done
mn_compare_ckpt "$work/train_online-2x2/checkpoint.h5" "$work/train_online-1x4/checkpoint.h5" 6 "2x2 vs 1x4 online training" \
  || fail "online training: 2x2 and 1x4 differ beyond the bound"
mn_scrape_report $JOB 4 || fail "Prometheus did not scrape every rank on its host"

for layout in 2x2 1x4; do
  mn_job $layout eval "${E[@]}" --output_dir="$work/eval-$layout"
  mn_placement "$work/eval-$layout.log" $layout || fail "eval placement on $layout"
done
same_tables "$work/eval-2x2/table.json" "$work/eval-1x4/table.json" || fail "eval: 2x2 and 1x4 tables differ"

# Threads per rank per host: an uneven layout (mn1 3 ranks, mn2 1) where each rank sizes its threads
# itself (--threads=0): the CPUs it may use (all of the test's, --bind-to none) over its host's
# local ranks. The shards are not compared (thread counts change rounding, docs/numerics.md).
allowed=$(env -u OMP_NUM_THREADS -u OMP_THREAD_LIMIT nproc)
mn_job 3+1 precompute "${P[@]}" --threads=0 --cache_dir="$work/cache-3+1"
mn_placement "$work/precompute-3+1.log" 3+1 "$allowed" || fail "precompute placement and threads on 3+1"

echo "PASS after $(($(date +%s) - start_s)) s"
