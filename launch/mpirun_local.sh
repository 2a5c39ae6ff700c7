#!/usr/bin/env bash
# mpirun_local.sh NP TOOL [TOOL FLAGS...]: runs TOOL (excel_precompute, excel_train, excel_eval,
# excel_cam_demo) from ${BUILD_DIR:-build}/src/ with NP MPI ranks on this node, each through
# launch/bind_local_rank.sh. Runs in the repository root, so relative paths in flags and flag files
# (configs/*.flags) resolve from there.
# Extra mpirun options: $MPIRUN_ARGS. As root, OpenMPI also wants OMPI_ALLOW_RUN_AS_ROOT=1 and
# OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 in the environment (launch/run_demo.sh sets them).
#   launch/mpirun_local.sh 2 excel_train --flagfile=configs/tiny_demo.flags --train_batch=2
set -euo pipefail
[ $# -ge 2 ] || { echo "usage: $0 NP TOOL [TOOL FLAGS...]" >&2; exit 2; }
NP=$1 TOOL=$2
shift 2
cd "$(dirname "$0")/.."
# shellcheck source=launch/resolve_tool.sh
source launch/resolve_tool.sh
resolve_tool "$TOOL"
# --bind-to none: each tool divides the cores it may use by its node-local rank count itself;
# OpenMPI's default core binding would leave every rank a single core.
# shellcheck disable=SC2086  # MPIRUN_ARGS is a list of options
exec mpirun --oversubscribe --bind-to none -np "$NP" ${MPIRUN_ARGS:-} \
  "$PWD/launch/bind_local_rank.sh" "$BIN" "$@"
