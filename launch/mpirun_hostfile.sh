#!/usr/bin/env bash
# mpirun_hostfile.sh HOSTFILE NP TOOL [TOOL FLAGS...]: runs TOOL (excel_precompute, excel_train,
# excel_eval, excel_cam_demo) with NP MPI ranks over the nodes of an OpenMPI host file
# ("node1 slots=8" per line). The repository, build and data must be at the same paths on every
# node (shared file system); ranks start in the repository root. Environment the tools read
# (EXCEL_*, GLOG_*, OMP_*, MKL_*, CUDA_*/NCCL_* and PATH, LD_LIBRARY_PATH) is forwarded with -x.
# Extra mpirun options: $MPIRUN_ARGS. As root, OpenMPI also wants OMPI_ALLOW_RUN_AS_ROOT=1 and
# OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 in the environment (launch/run_demo.sh sets them).
#   launch/mpirun_hostfile.sh hosts.txt 16 excel_train --flagfile=configs/voc_vit_b16.flags --train_batch=1
set -euo pipefail
[ $# -ge 3 ] || { echo "usage: $0 HOSTFILE NP TOOL [TOOL FLAGS...]" >&2; exit 2; }
HOSTFILE=$(realpath "$1") NP=$2 TOOL=$3
shift 3
cd "$(dirname "$0")/.."
# shellcheck source=launch/resolve_tool.sh
source launch/resolve_tool.sh
resolve_tool "$TOOL"
[ -r "$HOSTFILE" ] || { echo "$0: cannot read host file $HOSTFILE" >&2; exit 2; }
fwd=()
for v in $(compgen -e); do
  case "$v" in
    EXCEL_* | GLOG_* | OMP_* | MKL_* | CUDA_* | NCCL_* | PATH | LD_LIBRARY_PATH) fwd+=(-x "$v") ;;
  esac
done
# --bind-to none: see mpirun_local.sh (the tools split the node's cores among local ranks).
# shellcheck disable=SC2086  # MPIRUN_ARGS is a list of options
exec mpirun --hostfile "$HOSTFILE" -np "$NP" --bind-to none --wdir "$PWD" "${fwd[@]}" ${MPIRUN_ARGS:-} \
  "$PWD/launch/bind_local_rank.sh" "$BIN" "$@"
