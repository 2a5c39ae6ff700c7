#!/usr/bin/env bash
# A host that fails during a 2 hosts x 2 ranks training job (tests/multinode/hosts.sh): every process
# of mn2 killed mid-step, or mn2's port on the bridge taken down mid-step (the watchdog's case). Each
# ends the job within the test's timeout with a message naming mn2 and its ranks 2 and 3; the time
# from the failure to mpirun's exit is printed. Resumed from the checkpoint each left (on 2 x 2), and
# after a 1 host x 4 ranks job killed and resumed on that host, training ends with the weights of an
# uninterrupted 1 x 4 job, bit for bit.
#   multinode_fault_test.sh BUILD_DIR
set -euo pipefail
BUILD=$1
# shellcheck source=tests/test_lib.sh
source "$(dirname "$0")/test_lib.sh"
# shellcheck source=tests/multinode/hosts.sh
source "$(dirname "$0")/multinode/hosts.sh"
# shellcheck source=tests/multinode/jobs.sh
source "$(dirname "$0")/multinode/jobs.sh"
start_s=$(date +%s)

mn_require
work=$(mktemp -d)
mn_on_exit() {
  [ -n "${MN_KEEP_LOGS:-}" ] && mkdir -p "$MN_KEEP_LOGS" && cp "$work"/*.log "$MN_KEEP_LOGS"/  # for debugging
  rm -rf "$work"
  return 0
}
mn_setup 2 "$work/mn"
mn_hostfile "$work/hosts2x2" 2 2
mn_hostfile "$work/hosts1x4" 4

make_tiny_data "$work" 8 80 120
export OMP_NUM_THREADS=1
ITERS=12
TIMEOUT_S=10  # the watchdog's --comm_timeout_s
T=("$BUILD/src/excel_train" --data_root="$work/voc" --model_clip="$work/clip/clip.jit.pt" --model_bank="$work/bank.h5"
   --model_crop=64 --threads=1 --data_train_split=train --data_val_split=val --model_adapter_dim=32 --train_batch=1
   --train_max_iters="$ITERS" --train_warmup_iters=2 --train_switch_iter=100 --train_pred_target_iter=100 --train_lr=1e-4
   --eval_every=1000 --ckpt_every=6 --train_log_every=1 --comm_timeout_s="$TIMEOUT_S")

# The uninterrupted reference.
mn_job 1x4 full "${T[@]}" --output_dir="$work/full"

# fail_midway LAYOUT NAME HOW: start the job, wait for rank 0's "it 7/" line (the checkpoint at
# iteration 6 is on disk), then HOW (a command) breaks it; prints the seconds from HOW to the exit.
fail_midway() {
  local layout=$1 name=$2 how=$3 rc=0 t0 t1
  mn_job_bg "$layout" "$name" "${T[@]}" --output_dir="$work/$name"
  for _ in $(seq 1 3000); do
    grep -q "rank0 .*it 7/$ITERS" "$work/$name-$layout.log" 2>/dev/null && break
    kill -0 "$MN_JOB" 2>/dev/null || break
    sleep 0.1
  done
  grep -q "rank0 .*it 7/$ITERS" "$work/$name-$layout.log" || { tail -30 "$work/$name-$layout.log"; fail "$name: never reached iteration 7"; }
  t0=$(date +%s.%N)
  $how
  wait "$MN_JOB" || rc=$?
  t1=$(date +%s.%N)
  [ "$rc" -ne 0 ] || fail "$name: the job exited 0 after its failure"
  FAIL_S=$("$MN_PY" -c "print(f'{$t1 - $t0:.1f}')")
  echo "$name on $layout: mpirun exited $rc, $FAIL_S s after the failure"
}

# resume LAYOUT NAME: the job again on the checkpoint NAME left; it must say where it resumed.
resume() {
  mn_job "$1" "resume_$2" "${T[@]}" --output_dir="$work/$2"
  RESUMED_AT=$(sed -n 's/.*resumed from .* at iteration \([0-9]*\).*/\1/p' "$work/resume_$2-$1.log" | head -1)
  [ -n "$RESUMED_AT" ] || fail "$2: the job did not resume from its checkpoint"
}

# 1. Every process of mn2 (its OpenMPI daemon and ranks 2 and 3) killed mid-step.
fail_midway 2x2 hostkill "mn_kill_host mn2"
kill_s=$FAIL_S
log=$work/hostkill-2x2.log
# OpenMPI names the host it lost; the job's start line maps it to its ranks.
grep -E "Peer host: *mn2|on node mn2" "$log" || { tail -40 "$log"; fail "hostkill: no message names host mn2"; }
grep "progress watchdog: 4 ranks on 2 host(s): mn1 (ranks 0, 1); mn2 (ranks 2, 3)" "$log" \
  || { tail -40 "$log"; fail "hostkill: the job did not map host mn2 to its ranks 2 and 3"; }

# 2. mn2's port on the bridge taken down mid-step: nothing reaches mn2 any more, nothing comes back;
# the watchdog (--comm_timeout_s) of the ranks on mn1 finds it.
fail_midway 2x2 linkdown "mn_link mn2 down"
down_s=$FAIL_S
log=$work/linkdown-2x2.log
grep -E "error: rank [01]: no progress.*host mn2 \(ranks 2, 3\)( does not answer on the network|;)" "$log" \
  || { grep -v "^    @" "$log" | grep -v "trainer.cpp" | tail -40; fail "linkdown: the watchdog did not name host mn2 and its ranks"; }
mn_kill_host mn2 || true  # what was left on mn2, cut off, as a rebooted host would be
mn_link mn2 up

# 3. The same job on one host killed there (every process of mn1), for comparison.
fail_midway 1x4 onehost "mn_kill_host mn1"

for case in hostkill:2x2 linkdown:2x2 onehost:1x4; do
  name=${case%:*} layout=${case#*:}
  resume "$layout" "$name"
  mn_compare_ckpt "$work/full/checkpoint.h5" "$work/$name/checkpoint.h5" $ITERS \
    "$name on $layout, resumed at iteration $RESUMED_AT vs uninterrupted 1x4" 0 || fail "$name: resumed weights differ"
done
mn_compare_ckpt "$work/onehost/checkpoint.h5" "$work/hostkill/checkpoint.h5" $ITERS "resumed after host kill (2x2) vs after single-host kill (1x4)" 0
mn_compare_ckpt "$work/onehost/checkpoint.h5" "$work/linkdown/checkpoint.h5" $ITERS "resumed after link down (2x2) vs after single-host kill (1x4)" 0
echo "[figure] multinode host failure to job exit: every process of mn2 killed $kill_s s; mn2's link down $down_s s (--comm_timeout_s=$TIMEOUT_S)"
echo "PASS after $(($(date +%s) - start_s)) s"
