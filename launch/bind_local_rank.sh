#!/usr/bin/env bash
# bind_local_rank.sh CMD [ARGS...]: exec wrapper for one rank. Takes the node-local rank from
# OpenMPI (OMPI_COMM_WORLD_LOCAL_RANK) or SLURM (SLURM_LOCALID) and, when GPUs are visible, pins
# this rank to one of them through CUDA_VISIBLE_DEVICES before exec'ing CMD. CPU-only nodes and
# ranks that the launcher already bound to a single GPU are left untouched.
set -euo pipefail
[ $# -ge 1 ] || { echo "usage: $0 CMD [ARGS...]" >&2; exit 2; }
local_rank=${OMPI_COMM_WORLD_LOCAL_RANK:-${SLURM_LOCALID:-0}}

gpus=()
cvd=${CUDA_VISIBLE_DEVICES:-}
if [ -n "$cvd" ] && [ "$cvd" != NoDevFiles ]; then
  IFS=, read -r -a gpus <<<"$cvd"     # the launcher's list (e.g. SLURM --gpus-per-node)
elif command -v nvidia-smi >/dev/null 2>&1; then
  n=$(timeout 20 nvidia-smi -L 2>/dev/null | grep -c '^GPU ' || true)
  for ((i = 0; i < ${n:-0}; i++)); do gpus+=("$i"); done
fi
if [ ${#gpus[@]} -gt 1 ] || { [ ${#gpus[@]} -eq 1 ] && [ -z "$cvd" ]; }; then
  if [ "$local_rank" -ge ${#gpus[@]} ]; then
    echo "bind_local_rank: local rank $local_rank but only ${#gpus[@]} GPUs, sharing GPU ${gpus[local_rank % ${#gpus[@]}]}" >&2
  fi
  export CUDA_VISIBLE_DEVICES=${gpus[local_rank % ${#gpus[@]}]}
fi
exec "$@"
