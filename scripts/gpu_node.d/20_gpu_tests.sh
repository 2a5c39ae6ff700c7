#!/usr/bin/env bash
# Issue 13's GPU tests in one bounded run (docs/gpu_node.md, "GPU tests"):
#   a. fp32_contract: excel_dump_stages --device=cuda in fp32 (TF32 off) on the stage fixture,
#      checked by the fixture's compare.py on every group;
#   b. fp16, bf16: the same dump with --model_precision=fp16|bf16, its worst error per group
#      (reported, not bounded), and how many pseudo-label pixels an fp16/bf16 backbone changes
#      against fp32 (excel_cuda_tests, ReducedPrecisionPseudoLabels);
#   c. cuda_step: one training step on CUDA against the CPU's within the fixture's tolerances
#      (excel_cuda_tests, DeviceStepMatchesCpuStep);
#   d. nccl_nonfinite: excel_train over NCCL with CUDA tensors on the tiny world, a NaN loss on one
#      rank skipped on every rank, weights unchanged across it (tests/nonfinite_skip_test.sh).
# Output: the parts' figures on stdout, every command's whole output in one log: appended to stdout
# when stdout is already $LOGS/20_gpu_tests.txt (gpu_node.sh; the device runner returns 8 files),
# else $LOGS/20_gpu_tests.log.
# Exit 0 when no part failed and one passed, 77 when every part was skipped (the reason on the last
# line), 1 when one failed.
# env: BUILD (build-node), LOGS, FIXTURES, TIME_LEFT_S (gpu_node.sh sets them), GPU_TESTS_LIMIT_S
#      (150 on CUDA, 600 on the CPU; capped by TIME_LEFT_S - 5), PYTHON (for compare.py and the
#      weights check, which need h5py and numpy; default: python3, else /usr/bin/python3), EXCEL_BPE_PATH (CLIP's BPE list for the text stages;
#      default: found by the dump, else taken from the bundle's reference code),
#      GPU_TESTS_DEVICE=cpu (no GPU: the same parts with --device=cpu --model_kernels=torch, the
#      code CUDA runs, to check this script; fp16/bf16 are skipped, NCCL becomes MPI).
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 1
ROOT=$PWD
BUILD=$(realpath -m "${BUILD:-build-node}")
LOGS=${LOGS:-$BUILD/logs}
mkdir -p "$LOGS"
W=$(mktemp -d "${TMPDIR:-/tmp}/excel_gpu_tests.XXXXXX")
trap 'rm -rf "$W"' EXIT
LOG=$W/details.log
: >"$LOG"
if [ "$(readlink -f /proc/$$/fd/1)" = "$(readlink -f "$LOGS")/20_gpu_tests.txt" ]; then
  KEEP=stdout
else
  KEEP=$LOGS/20_gpu_tests.log
fi
finish() {  # STATUS: the log kept, then exit
  if [ "$KEEP" = stdout ]; then echo "== whole output"; cat "$LOG"; else cp "$LOG" "$KEEP"; fi
  exit "$1"
}
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1

if [ "${GPU_TESTS_DEVICE:-cuda}" = cpu ]; then
  CUDA=0 DEV=(--device=cpu --model_kernels=torch) BACKEND=mpi budget=${GPU_TESTS_LIMIT_S:-600} scale=4
  export EXCEL_CUDA_TEST_DEVICE=cpu
else
  CUDA=1 DEV=(--device=cuda) BACKEND=nccl budget=${GPU_TESTS_LIMIT_S:-150} scale=1
fi
if [ -n "${TIME_LEFT_S:-}" ] && [ "$budget" -gt $((TIME_LEFT_S - 5)) ]; then budget=$((TIME_LEFT_S - 5)); fi
start=$SECONDS
left() { echo $((budget - (SECONDS - start))); }
say() { echo "gpu_tests [$((SECONDS - start)) s] $*"; }
passed=0 failed=0 skipped=0 last_skip=""
pass() { say "PASS $1"; passed=$((passed + 1)); }
fail() { say "FAIL $1"; failed=$((failed + 1)); }
skip() { say "SKIP $1: $2"; skipped=$((skipped + 1)); last_skip="$1: $2"; }
# run NAME LIMIT_S CMD...: CMD within LIMIT_S x scale and the budget left, output appended to the log
# (and kept in $W/NAME.out); returns CMD's status, 124 when out of time.
run() {
  local name=$1 lim=$(($2 * scale)) rc=0
  shift 2
  [ "$lim" -gt "$(left)" ] && lim=$(left)
  if [ "$lim" -lt 5 ]; then
    echo "out of time (budget $budget s)" | tee "$W/$name.out" | sed "s/^/== $name: /" >>"$LOG"
    return 124
  fi
  echo "== $name ($lim s): $*" >>"$LOG"
  timeout "$lim" "$@" >"$W/$name.out" 2>&1 || rc=$?
  cat "$W/$name.out" >>"$LOG"
  echo "== $name: exit $rc" >>"$LOG"
  return "$rc"
}

[ "$CUDA" = 1 ] && { timeout 20 nvidia-smi --query-gpu=name,memory.total --format=csv,noheader 2>&1 | sed 's/^/GPU: /'; }
say "device ${DEV[*]}, budget $budget s, log $KEEP"

# The fixture: FIXTURES/fixture.h5 (the bundle's) or FIXTURES/public/fixture.h5 (../shared/fixtures).
FX=""
for d in "${FIXTURES:-}" "${FIXTURES:-}/public"; do
  [ -n "${FIXTURES:-}" ] && [ -f "$d/fixture.h5" ] && { FX=$d; break; }
done
COMPARE=""
for c in "$FX/compare.py" "$FX/../compare.py"; do [ -n "$FX" ] && [ -f "$c" ] && { COMPARE=$c; break; }; done
have_h5py=0 PY=${PYTHON:-python3}
for p in ${PYTHON:-} python3 /usr/bin/python3; do  # the first with h5py and numpy
  "$p" -c 'import h5py, numpy' 2>/dev/null && { have_h5py=1 PY=$p; break; }
done
# CLIP's BPE list for the dump's text stages: the dump's own search, else the bundle's reference code.
if [ -z "${EXCEL_BPE_PATH:-}" ] && [ ! -f "$ROOT/data/bpe_simple_vocab_16e6.txt.gz" ] && [ -n "$FX" ] &&
   [ ! -f "$FX/../../data/text/bpe_simple_vocab_16e6.txt.gz" ]; then
  tarball=${GPU_BUNDLE_DIR:-gpu_bundle}/reference/excel-ref.tar.xz
  member=$([ -f "$tarball" ] && tar -tJf "$tarball" 2>/dev/null | grep 'bpe_simple_vocab_16e6.txt.gz$' | head -1)
  if [ -n "$member" ] && tar -xJf "$tarball" -C "$W" "$member" 2>/dev/null; then
    export EXCEL_BPE_PATH=$W/$member
  fi
fi

# ---- a, b: the stage dump in fp32, fp16 and bf16 ---------------------------------------------
dump() {  # PRECISION: $W/dump_PRECISION.h5; compare.py's lines go to stdout
  local p=$1 rc=0 part=${1}_dump
  [ "$p" = fp32 ] && part=fp32_contract
  run "dump_$p" 60 "$BUILD/src/excel_dump_stages" "${DEV[@]}" --model_precision="$p" --checkpoint="$FX/clip_tiny.jit.pt" \
    --input="$FX/fixture.h5" --output="$W/dump_$p.h5" || rc=$?
  if [ "$rc" -ne 0 ] && grep -q 'BPE merge list not found' "$W/dump_$p.out"; then
    skip "$part" "no CLIP BPE list for the text stages (set EXCEL_BPE_PATH, or make the bundle with --reference, which carries it)"
    return 2
  elif [ "$rc" -ne 0 ]; then
    tail -3 "$W/dump_$p.out"
    fail "$part (excel_dump_stages exit $rc$([ "$rc" -eq 124 ] && echo ", out of time"))"
    return 1
  fi
  rc=0
  run "compare_$p" 60 "$PY" "$COMPARE" "$FX/fixture.h5" "$W/dump_$p.h5" --require text,vision,cam,train,infer,metrics || rc=$?
  sed "s/^/  [$p] /" "$W/compare_$p.out"
  return "$rc"
}
if [ -z "$FX" ]; then
  skip fp32_contract "no fixture.h5 in FIXTURES=${FIXTURES:-} (make the bundle with gpu_bundle.sh --fixtures)"
  skip fp16_bf16_dump "no fixture"
elif [ -z "$COMPARE" ] || [ "$have_h5py" = 0 ]; then
  skip fp32_contract "no compare.py beside $FX, or $PY lacks h5py/numpy"
  skip fp16_bf16_dump "no compare.py, or $PY lacks h5py/numpy"
else
  rc=0
  dump fp32 || rc=$?
  if [ "$rc" -eq 0 ]; then
    # TF32 off: the dump's start line names no TF32 ("backbone fp32, kernels ...")
    if grep -q 'backbone fp32, kernels' "$W/dump_fp32.out"; then pass fp32_contract; else fail "fp32_contract (not plain fp32: $(grep -m1 'backbone' "$W/dump_fp32.out"))"; fi
  elif [ "$rc" -ne 2 ] && [ -s "$W/dump_fp32.h5" ]; then
    fail "fp32_contract (compare.py $([ "$rc" -eq 124 ] && echo "out of time" || echo above))"
  fi
  if [ "$rc" -eq 2 ]; then
    skip fp16_bf16_dump "no CLIP BPE list (above)"
  elif [ "$CUDA" = 1 ]; then
    for p in fp16 bf16; do  # the contract is fp32's: these report their errors, and pass when the dump ran
      dump "$p"
      [ -s "$W/dump_$p.h5" ] && pass "${p}_dump (errors reported, not bounded)"
    done
  else
    skip fp16_bf16_dump "fp16/bf16 backbones run on CUDA only (excel_dump_stages refuses them with --device=cpu)"
  fi
fi

# ---- b, c: excel_cuda_tests (the CUDA step against the CPU's; fp16/bf16 pseudo-labels) ----------
T=$BUILD/tests/excel_cuda_tests
if [ ! -x "$T" ]; then
  skip cuda_step "$T is not built (gpu_node.sh builds it; elsewhere: cmake --build BUILD --target excel_cuda_tests)"
elif [ -z "$FX" ]; then
  skip cuda_step "no fixture"
else
  rc=0
  run cuda_step 90 env EXCEL_FIXTURE="$FX/fixture.h5" "$T" || rc=$?
  grep -E '^\[(equivalence|cuda step|precision)\]' "$W/cuda_step.out" | sed 's/^/  /'
  grep -E -A3 ': Failure$' "$W/cuda_step.out" | head -20 | sed 's/^/  /'
  ok=$(grep -c '^\[       OK \]' "$W/cuda_step.out")
  why=$(grep -m1 -A1 ': Skipped$' "$W/cuda_step.out" | tail -1 | sed 's/^ *//')
  if [ "$rc" -ne 0 ]; then
    fail "cuda_step (exit $rc$([ "$rc" -eq 124 ] && echo ", out of time"))"
  elif [ "$ok" -gt 0 ]; then
    pass "cuda_step ($ok test(s) passed$([ -n "$why" ] && echo "; skipped: $why"))"
  else
    skip cuda_step "${why:-no test ran}"
  fi
fi

# ---- d: excel_train over NCCL with CUDA tensors, a NaN step skipped on every rank --------------
# NCCL takes one rank per GPU: 2 ranks need 2 GPUs, else the NCCL path runs on 1 rank.
np_=2
if [ "$CUDA" = 1 ]; then
  gpus=$(timeout 20 nvidia-smi -L 2>/dev/null | grep -c '^GPU')
  [ "$gpus" -lt 2 ] && np_=1
fi
rc=0
run nccl_nonfinite 60 env NP="$np_" PYTHON="$PY" bash tests/nonfinite_skip_test.sh "$BUILD" "${DEV[0]#--device=}" "$BACKEND" || rc=$?
grep -E '^(rank 0: device|collectives|iteration|skipped step|SKIP|FAIL|  rank)' "$W/nccl_nonfinite.out" | sed 's/^/  /'
case $rc in
  0) pass "nccl_nonfinite ($np_ rank(s), $BACKEND)" ;;
  77) skip nccl_nonfinite "$(tail -1 "$W/nccl_nonfinite.out")" ;;
  *) tail -5 "$W/nccl_nonfinite.out"; fail "nccl_nonfinite (exit $rc$([ "$rc" -eq 124 ] && echo ", out of time"))" ;;
esac

say "done in $((SECONDS - start)) s of $budget: $passed passed, $skipped skipped, $failed failed"
[ "$failed" -gt 0 ] && finish 1
if [ "$passed" = 0 ]; then
  if [ "$KEEP" = stdout ]; then echo "== whole output"; cat "$LOG"; else cp "$LOG" "$KEEP"; fi
  echo "every part skipped (last: $last_skip)"  # the last line, as gpu_node.sh reads it
  exit 77
fi
finish 0
