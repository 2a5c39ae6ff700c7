#!/usr/bin/env bash
# Data-parallel scaling from 1 to N ranks on this node (synthetic data, random tiny CLIP, online
# training): the same per-rank batch on 1 and on N ranks; throughput = global batch / mean step
# time (steps only: no start-up, validation or checkpoints). Last line: one JSON object.
# Usage: bench/scaling.sh [NP=2] [CROP=128] [BATCH=2] [ITERS=30]
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD_DIR:-build}
NP=${1:-2}; CROP=${2:-128}; BATCH=${3:-2}; ITERS=${4:-30}
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
bash launch/make_tiny_world.sh "$BUILD" "$work" --data_num_images=32 2>/dev/null
export EXCEL_BPE_PATH="$work/bpe.txt.gz"
rate() {  # NP -> samples/s; the tool's log goes to $work/rateNP.log
  mpirun -np "$1" "$BUILD/src/excel_train" --data_root="$work/voc" --model_clip="$work/clip/clip.jit.pt" \
    --model_bank="$work/bank.h5" --data_train_split=train --data_val_split=val --model_crop="$CROP" \
    --model_adapter_dim=64 --train_batch="$BATCH" --train_max_iters="$ITERS" --train_warmup_iters=2 \
    --train_switch_iter=1000 --eval_every=100000 --ckpt_every=100000 --output_dir="$work/run$1" 2>&1 |
    tee "$work/rate$1.log" | sed -n 's/.*rank0 .*(\([0-9.e+]*\) samples\/s over.*/\1/p'
}
r1=$(rate 1)
rn=$(rate "$NP")
for n_ in 1 "$NP"; do echo "compute, $n_ rank(s): $(sed -n 's/.*rank0 .* threads (\(.*\))$/\1/p' "$work/rate$n_.log" | head -1)"; done
python3 -c "
r1, rn, n = $r1, $rn, $NP
print(f'1 rank: {r1:.2f} samples/s; {n} ranks: {rn:.2f} samples/s; speed-up {rn / r1:.2f}x, efficiency {rn / r1 / n:.2f} ({$(nproc)} cores)')
print('{\"bench\":\"scaling\",\"ranks\":%d,\"per_rank_batch\":%d,\"crop\":%d,\"one_rank_samples_per_s\":%.3f,\"n_rank_samples_per_s\":%.3f,\"speedup\":%.3f,\"efficiency\":%.3f}' % (n, $BATCH, $CROP, r1, rn, rn / r1, rn / r1 / n))
"
