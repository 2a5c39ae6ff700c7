#!/usr/bin/env bash
# run_tool.sh TOOL [TOOL FLAGS...]: starts TOOL (excel_precompute, excel_train, excel_eval,
# excel_cam_demo) on every task of the current SLURM allocation, each rank through
# launch/bind_local_rank.sh. Called by slurm/*.sbatch; runs in the repository root.
#   EXCEL_LAUNCHER  auto (default: `srun --mpi=pmix` where SLURM has the pmix plugin and OpenMPI a
#                   PMIx client, else mpirun inside the allocation), srun or mpirun
#   EXCEL_FLAGFILE  flag file put before the command-line flags (--flagfile=...)
#   BUILD_DIR       build tree (default build); SRUN_ARGS / MPIRUN_ARGS: extra launcher options
set -euo pipefail
[ $# -ge 1 ] || { echo "usage: $0 TOOL [TOOL FLAGS...]" >&2; exit 2; }
TOOL=$1
shift
cd "$(dirname "$0")/.."
[ -n "${SLURM_JOB_ID:-}" ] || { echo "$0: not inside a SLURM allocation (use launch/mpirun_*.sh)" >&2; exit 2; }
case "$TOOL" in
  excel_precompute | excel_train | excel_eval | excel_cam_demo) ;;
  *) echo "$0: unknown tool '$TOOL'" >&2; exit 2 ;;
esac
BIN="$(cd "${BUILD_DIR:-build}" && pwd)/src/$TOOL"
[ -x "$BIN" ] || { echo "$0: $BIN not built" >&2; exit 2; }
cmd=("$PWD/launch/bind_local_rank.sh" "$BIN")
if [ -n "${EXCEL_FLAGFILE:-}" ]; then cmd+=("--flagfile=$EXCEL_FLAGFILE"); fi

launcher=${EXCEL_LAUNCHER:-auto}
if [ "$launcher" = auto ]; then
  launcher=mpirun
  # srun can start OpenMPI ranks only through PMIx (Debian's OpenMPI 4.1 has no PMI-2 client).
  # (Outputs captured first: `grep -q` closing a pipe early would fail it under pipefail.)
  plugins=$(srun --mpi=list 2>&1 || true)
  ompi=$(ompi_info 2>/dev/null || echo "MCA pmix: ext (no ompi_info)")
  if grep -qw pmix <<<"$plugins" && grep -Eq 'MCA pmix: (ext|pmix)' <<<"$ompi"; then launcher=srun; fi
fi
echo "run_tool: job ${SLURM_JOB_ID}: $TOOL, ${SLURM_NTASKS:-?} tasks on ${SLURM_JOB_NUM_NODES:-?} node(s) via $launcher" >&2
# No CPU binding by the launcher: each rank divides the cores it sees by its node's rank count.
# shellcheck disable=SC2086  # SRUN_ARGS / MPIRUN_ARGS are lists of options
case "$launcher" in
  srun) exec srun --mpi=pmix --cpu-bind=none --kill-on-bad-exit=1 ${SRUN_ARGS:-} "${cmd[@]}" "$@" ;;
  mpirun) exec mpirun ${SLURM_NTASKS:+-np "$SLURM_NTASKS"} --bind-to none ${MPIRUN_ARGS:-} "${cmd[@]}" "$@" ;;
  *) echo "$0: EXCEL_LAUNCHER must be auto, srun or mpirun, not '$launcher'" >&2; exit 2 ;;
esac
