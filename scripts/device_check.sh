#!/usr/bin/env bash
# One bounded GPU check (about 8 minutes at most): lists the GPUs, builds build-cuda unless a
# working excel_nccl_check is already there (DEVICE_CHECK_BUILD=1 forces it), then runs
# excel_nccl_check on 1 rank and, with 2+ GPUs, on 2 ranks. Logs go to $OUT/device_check when
# OUT is set. Exit 0 only if every run passed; 77 is a failure here (a GPU was expected).
set -uo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD_DIR:-build-cuda}
LOGS=${OUT:-/tmp}/device_check
mkdir -p "$LOGS"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 NCCL_DEBUG=${NCCL_DEBUG:-WARN}
TOOL=$BUILD/data_tools/excel_nccl_check
status=0

echo "== GPUs"
timeout 30 nvidia-smi -L 2>&1 | tee "$LOGS/gpus.txt"
timeout 30 nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>&1 | tee -a "$LOGS/gpus.txt"
gpus=$(grep -c '^GPU ' "$LOGS/gpus.txt" || true)

if [ "${DEVICE_CHECK_BUILD:-0}" = 1 ] || [ ! -x "$TOOL" ] || ldd "$TOOL" | grep -q "not found"; then
  echo "== build ($BUILD)"
  start=$SECONDS
  if ! timeout 360 bash -c "cmake -S . -B '$BUILD' -G Ninja -DCMAKE_BUILD_TYPE=Release -DEXCEL_WITH_CUDA=ON \
      -DEXCEL_BUILD_TESTS=OFF && cmake --build '$BUILD' -j \$(nproc) --target excel_train excel_nccl_check" \
      >"$LOGS/build.txt" 2>&1; then
    tail -40 "$LOGS/build.txt"
    echo "FAIL: build (log in $LOGS/build.txt)"
    exit 1
  fi
  echo "built in $((SECONDS - start)) s"
fi

run_check() {  # ranks
  echo "== mpirun -np $1 excel_nccl_check"
  local rc=0
  timeout 90 mpirun -np "$1" --oversubscribe "$TOOL" 2>&1 | tee "$LOGS/np$1.txt"
  rc=${PIPESTATUS[0]}
  if [ "$rc" -ne 0 ]; then
    echo "FAIL: -np $1 exited $rc (77: no usable CUDA device, check the driver version above)"
    status=1
  fi
}
run_check 1
if [ "${gpus:-0}" -ge 2 ]; then run_check 2; else echo "== fewer than 2 GPUs: -np 2 not run"; fi
[ "$status" -eq 0 ] && echo "device_check: PASS" || echo "device_check: FAIL"
exit "$status"
