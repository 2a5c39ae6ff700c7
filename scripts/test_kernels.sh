#!/usr/bin/env bash
# Runs the numerically sensitive tests (fixture parity, device path vs CPU path, cached vs online,
# resume, data-parallel world sizes, evaluation over ranks, precompute kill/resume) once per
# OpenBLAS kernel, forced with OPENBLAS_CORETYPE, and prints per kernel the largest difference
# each equivalence test measured beside its bound. A kernel whose instructions this CPU lacks is
# skipped with a message.
# Usage: scripts/test_kernels.sh [KERNEL ...]   (default: Sandybridge Haswell Zen SkylakeX)
# Needs a build (scripts/test.sh, or BUILD_DIR).
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD_DIR:-build}
KERNELS=("$@")
[ ${#KERNELS[@]} -gt 0 ] || KERNELS=(Sandybridge Haswell Zen SkylakeX)
SENSITIVE='FixtureParityTest|ClipVisionTest.device_path|PseudoLabelTest.device_path|ImagePipelineTest|fixture_compare_py|StageDumpTest|CachedTrainingTest|TrainerTest|mpi_data_parallel_2ranks|dist_faults_resume|eval_ranks_tables_masks|cache_precompute_kill_resume'
[ -x "$BUILD/tests/excel_tests" ] || { echo "test_kernels: no build in $BUILD (run scripts/test.sh first)"; exit 1; }

needs() {  # CPU flags (from /proc/cpuinfo) each kernel's code uses
  case "$1" in
    Sandybridge) echo "avx" ;;
    Haswell|Zen) echo "avx2 fma" ;;
    SkylakeX) echo "avx512f avx512bw avx512vl avx512dq" ;;
    Cooperlake) echo "avx512f avx512bw avx512vl avx512dq avx512_bf16" ;;
    *) echo "unknown" ;;
  esac
}
flags=" $(grep -m1 '^flags' /proc/cpuinfo | cut -d: -f2) "
logs=$(mktemp -d)
trap 'rm -rf "$logs"' EXIT
failed=()
ran=0
for k in "${KERNELS[@]}"; do
  if [ "$(needs "$k")" = unknown ]; then
    echo "== $k: skipped: not a kernel name this script knows (Sandybridge Haswell Zen SkylakeX Cooperlake)"
    continue
  fi
  missing=""
  for f in $(needs "$k"); do [[ "$flags" == *" $f "* ]] || missing+=" $f"; done
  if [ -n "$missing" ]; then
    echo "== $k: skipped: this CPU lacks$missing"
    continue
  fi
  # OpenBLAS silently falls back for a kernel it does not know: check which one it really runs.
  got=$(OPENBLAS_CORETYPE=$k "$BUILD/tests/excel_tests" --gtest_filter=NONE 2>/dev/null | sed -n 's/^\[blas\] OpenBLAS \([^ ]*\) kernel.*/\1/p')
  if [ "$got" != "$k" ]; then
    echo "== $k: skipped: OpenBLAS ran '${got:-no OpenBLAS}' when asked for $k"
    continue
  fi
  echo "== $k: running the sensitive tests"
  start=$(date +%s)
  rc=0
  OPENBLAS_CORETYPE=$k ctest --test-dir "$BUILD" -R "$SENSITIVE" -V > "$logs/$k.log" 2>&1 || rc=$?
  ran=$((ran + 1))
  echo "   $(grep -E "tests passed|tests failed" "$logs/$k.log" | tail -1) ($(( $(date +%s) - start )) s)"
  grep -o "\[equivalence\].*" "$logs/$k.log" | sed "s/^\[equivalence\] //" | sort -u > "$logs/$k.eq"
  if [ "$rc" -ne 0 ]; then
    failed+=("$k")
    grep -E "Failure|FAIL|Expected|Which is" "$logs/$k.log" | head -40 | sed "s/^/   /"
  fi
done
# One table: each equivalence measured, its bound, and the largest difference under each kernel.
if compgen -G "$logs/*.eq" > /dev/null; then
  python3 - "$logs"/*.eq <<'PYEOF'
import os, re, sys
rows, kernels = {}, []
for path in sys.argv[1:]:
    k = os.path.basename(path)[:-3]
    kernels.append(k)
    for line in open(path):
        m = re.match(r"(.*): largest difference (\S+) \(bound (\S+)\)(.*)", line.strip())
        if m:
            what = m.group(1) + m.group(4)
            rows.setdefault((what, m.group(3)), {})[k] = m.group(2)
print("\n| equivalence | bound | " + " | ".join(kernels) + " |")
print("|---|---|" + "---|" * len(kernels))
for (what, bound), vals in rows.items():
    print(f"| {what} | {bound} | " + " | ".join(vals.get(k, "-") for k in kernels) + " |")
PYEOF
fi
if [ ${#failed[@]} -gt 0 ]; then
  echo "test_kernels: sensitive tests failed under: ${failed[*]}"
  exit 1
fi
echo "test_kernels: sensitive tests passed under $ran kernel(s)"
