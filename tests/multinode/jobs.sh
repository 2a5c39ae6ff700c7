# shellcheck shell=bash
# Jobs on the simulated hosts of tests/multinode/hosts.sh, for the multi-node tests (sourced after
# hosts.sh and test_lib.sh; uses $work and the host files $work/hosts<LAYOUT>).
#   mn_job LAYOUT NAME CMD...        CMD on 4 ranks over LAYOUT (2x2, 1x4 or 3+1), mpirun on mn1; log $work/NAME-LAYOUT.log
#   mn_job_bg LAYOUT NAME CMD...     the same in the background; its pid in $MN_JOB
#   mn_placement LOG LAYOUT [ALLOWED]  local ranks, sizes, host names and threads from the tools' start lines
#   mn_stop_pids PID...              SIGTERM to processes of the root namespace (their groups first),
#                                    reaped; non-zero when one is still there
#   mn_compare_ckpt A B ITER WHAT [BOUND]  largest weight difference of two checkpoints at ITER (BOUND 1e-5)
MN_PY=/usr/bin/python3

mn_mpirun() {  # LAYOUT CMD...: the mpirun command line on mn1
  local layout=$1
  shift
  MN_CMD=(mn_exec mn1 timeout --foreground 300 mpirun --hostfile "$work/hosts$layout" -np 4 --bind-to none
          "${MN_MPIRUN_ARGS[@]}" "$@")
}

mn_job() {
  local layout=$1 name=$2 t0=$SECONDS
  shift 2
  mn_mpirun "$layout" "$@"
  "${MN_CMD[@]}" > "$work/$name-$layout.log" 2>&1 || { tail -40 "$work/$name-$layout.log"; fail "$name on $layout"; }
  echo "$name on $layout: $((SECONDS - t0)) s"
}

mn_job_bg() {
  local layout=$1 name=$2
  shift 2
  mn_mpirun "$layout" "$@"
  "${MN_CMD[@]}" > "$work/$name-$layout.log" 2>&1 &
  # shellcheck disable=SC2034  # read by the sourcing test
  MN_JOB=$!
}

mn_stop_pids() {
  local p left=""
  for p in "$@"; do kill -- -"$p" 2>/dev/null || kill "$p" 2>/dev/null; done
  for p in "$@"; do wait "$p" 2>/dev/null; done
  for p in "$@"; do kill -0 "$p" 2>/dev/null && left+=" $p"; done
  [ -z "$left" ] || { echo "FAIL: processes$left of this test are still running"; return 1; }
}

# The tools' start line: "rank R of 4, local rank L of S on HOST, T threads (A CPUs allowed, WHY;
# OpenBLAS ... LibTorch T threads)". Without ALLOWED the ranks ran with --threads=1; with it they
# chose their threads themselves: A = ALLOWED (the CPUs of the test, as --bind-to none leaves
# them) and T = max(1, A / S) on every host, also as LibTorch reports it.
mn_placement() {  # LOG LAYOUT [ALLOWED]
  "$MN_PY" - "$@" <<'PYEOF'
import re, sys
log, layout = open(sys.argv[1]).read(), sys.argv[2]
allowed = int(sys.argv[3]) if len(sys.argv) > 3 else None
ranks = {}
for m in re.finditer(r": rank (\d+) of (\d+), local rank (\d+) of (\d+) on (\S+), (\d+) threads "
                     r"\((\d+) CPUs allowed, ([^;]+);[^\n]*LibTorch (\d+) threads\)", log):
    r, w, l, s, host, t, a, why, torch_t = m.groups()
    ranks[int(r)] = (host, int(l), int(s), int(t), int(a), why, int(torch_t))
assert sorted(ranks) == [0, 1, 2, 3], f"start lines of ranks {sorted(ranks)}"
want = {"2x2": {"mn1": [0, 1], "mn2": [0, 1]}, "1x4": {"mn1": [0, 1, 2, 3]},
        "3+1": {"mn1": [0, 1, 2], "mn2": [0]}}[layout]
hosts = {}
for r, (host, l, s, t, a, why, torch_t) in sorted(ranks.items()):
    hosts.setdefault(host, []).append(l)
    assert s == len(want.get(host, [])), f"rank {r}: local size {s} on {host}"
    assert torch_t == t, f"rank {r}: logs {t} threads, LibTorch runs {torch_t}"
    if allowed is None:
        assert (t, why) == (1, "--threads"), f"rank {r}: {t} threads ({why}), expected --threads=1"
    else:
        expect = max(1, allowed // s)
        assert (a, why) == (allowed, f"shared by {s} local ranks"), f"rank {r} on {host}: {a} CPUs allowed ({why}), expected {allowed} shared by {s} local ranks"
        assert t == expect, f"rank {r} on {host}: {t} threads, expected max(1, {allowed} // {s}) = {expect}"
got = {h: sorted(ls) for h, ls in hosts.items()}
assert got == want, f"{layout}: local ranks per host {got}, expected {want}"
threads = {h: sorted({ranks[r][3] for r in ranks if ranks[r][0] == h}) for h in sorted(got)}
print(f"[figure] placement {layout}: " + "; ".join(
    f"{h} local ranks {got[h]} of {len(got[h])}, threads per rank {threads[h]}" for h in sorted(got))
    + (f" (--threads=1)" if allowed is None else f" ({allowed} CPUs allowed, --threads=0)"))
PYEOF
}

mn_compare_ckpt() {
  "$MN_PY" - "$@" <<'PYEOF'
import sys, h5py, numpy as np
a, b, it, what = h5py.File(sys.argv[1], "r"), h5py.File(sys.argv[2], "r"), int(sys.argv[3]), sys.argv[4]
tol = float(sys.argv[5]) if len(sys.argv) > 5 else 1e-5
assert a.attrs["next_iteration"] == b.attrs["next_iteration"] == it
assert sorted(a["params"]) == sorted(b["params"])
worst, n = 0.0, 0
for name in a["params"]:
    worst = max(worst, float(np.abs(a["params"][name][()] - b["params"][name][()]).max()))
    n += 1
print(f"[equivalence] multinode {what}: largest difference {worst:.3g} (bound {tol:g}) over {n} parameters")
assert worst <= tol, worst
PYEOF
}
