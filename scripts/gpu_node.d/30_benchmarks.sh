#!/usr/bin/env bash
# The issue-13 benchmarks in one bounded run (docs/gpu_node.md, "Benchmarks"): the backbone's
# precompute rate in fp16, bf16 and fp32 (TF32 off and on) beside the card's matmul rate, our
# training step (online and cached, before and after the dynamic-CAM switch) with its data-wait and
# gradient-sync shares, device memory and the largest batch that fits, and the reference step
# timed on the same GPU when the bundle carries it. Everything goes to stdout (gpu_node.sh keeps it
# as $LOGS/30_benchmarks.txt; the device runner returns few files): each benchmark's output, then
# the JSON lines, then a table (scripts/bench_summary.py). Exit 0 when every part ran or was skipped
# with its reason; 1 when one failed.
# env: BUILD (build-node), TIME_LEFT_S (the run's time left; gpu_node.sh sets
#      it), BENCH_LIMIT_S (240: the benchmarks' own budget, capped by TIME_LEFT_S - 10),
#      BENCH_SMOKE=1 (tiny sizes on the CPU: checks this script in under a minute; the CUDA-only
#      parts say SKIP), REFERENCE_DIR (the extracted reference code with time_reference_step.py;
#      default: unpacked from ${GPU_BUNDLE_DIR:-gpu_bundle}/reference/excel-ref.tar.xz),
#      BENCH_PYTHON (python3: the Python that runs the reference).
set -uo pipefail
cd "$(dirname "$0")/../.."
BUILD=${BUILD:-build-node}
W=$(mktemp -d "${TMPDIR:-/tmp}/excel_bench.XXXXXX")
trap 'rm -rf "$W"' EXIT
JSONL=$W/benchmarks.jsonl
: >"$JSONL"
SMOKE=${BENCH_SMOKE:-0}
budget=${BENCH_LIMIT_S:-240}
if [ -n "${TIME_LEFT_S:-}" ] && [ "$budget" -gt $((TIME_LEFT_S - 10)) ]; then budget=$((TIME_LEFT_S - 10)); fi
start=$SECONDS
left() { echo $((budget - (SECONDS - start))); }
B=$BUILD/bench
status=0
say() { echo "benchmarks [$((SECONDS - start)) s] $*"; }

if [ "$SMOKE" = 1 ]; then
  DEV=(--device=cpu --model_kernels=torch) CUDA=0
  BB=(--model_crop=32 --bench_batches=2 --bench_iters=1 --bench_card_gemm=256 --threads=1)
  BT=(--model_crop=32 --train_batch=2 --bench_iters=1 --bench_max_batch=8 --threads=1) MAX_BATCH_S=2
  BC=(--model_crop=64 --bench_images=4 --bench_iters=1 --threads=1)
  REF=(--device cpu --batch 4 --crop 64 --steps 1 --threads 1)  # the cache part's batch and size
  AR=(--comm_backend=mpi --train_batch=1 --bench_iters=1 --threads=1)
else
  DEV=(--device=cuda) CUDA=1
  BB=(--model_crop=320 --bench_batches=32,64,128 --bench_iters=5)
  BT=(--model_crop=320 --train_batch=4 --bench_iters=5) MAX_BATCH_S=40
  BC=(--model_crop=320 --bench_images=16 --bench_iters=8)
  REF=(--device cuda --batch 4 --crop 320 --steps 3)
  AR=(--comm_backend=nccl --train_batch=4 --bench_iters=5)
fi

# run NAME LIMIT_S CMD...: within LIMIT_S and the budget left; its JSON line (the last line that
# starts with '{') is kept for the table.
run() {
  local name=$1 lim=$2 rc=0 out
  shift 2
  [ "$lim" -gt "$(left)" ] && lim=$(left)
  if [ "$lim" -lt 5 ]; then say "SKIP $name: out of time (budget ${budget} s)"; return; fi
  local t0=$SECONDS
  out=$(timeout "$lim" "$@" 2>&1) || rc=$?
  echo "== $name: $*"
  grep -v '^I[0-9]' <<<"$out"  # without glog's INFO lines
  local json
  json=$(grep '^{' <<<"$out" | tail -1)
  if [ "$rc" -eq 0 ] && [ -n "$json" ]; then
    echo "$json" >>"$JSONL"
    say "ran $name in $((SECONDS - t0)) s"
  elif grep -q "^ModuleNotFoundError" <<<"$out"; then  # a Python module the reference imports
    skip "$name" "python3 lacks module $(sed -n "s/^ModuleNotFoundError: No module named '\([^']*\)'.*/\1/p" <<<"$out" | head -1)"
  else
    say "FAIL $name (exit $rc$([ "$rc" -eq 124 ] && echo ": over its ${lim} s"))"
    status=1
  fi
}
skip() { say "SKIP $1: $2"; echo "{\"bench\":\"skip\",\"name\":\"$1\",\"why\":\"$2\"}" >>"$JSONL"; }

for t in excel_bench_backbone excel_bench_train excel_bench_cache excel_bench_allreduce; do
  [ -x "$B/$t" ] || { echo "benchmarks: $B/$t is not built (gpu_node.sh builds it)"; exit 1; }
done
[ "$CUDA" = 1 ] && { timeout 20 nvidia-smi --query-gpu=name,memory.total,clocks.max.sm --format=csv,noheader 2>&1 | sed 's/^/GPU: /'; }

# 1. Backbone precompute rate (all per-layer outputs kept) and the card rate, per precision.
if [ "$CUDA" = 1 ]; then
  run backbone_fp16 40 "$B/excel_bench_backbone" "${DEV[@]}" "${BB[@]}" --model_precision=fp16
  run backbone_bf16 40 "$B/excel_bench_backbone" "${DEV[@]}" "${BB[@]}" --model_precision=bf16
  run backbone_fp32_tf32 40 "$B/excel_bench_backbone" "${DEV[@]}" "${BB[@]}" --model_precision=fp32 --model_tf32
else
  for p in fp16 bf16 fp32_tf32; do skip "backbone_$p" "needs a CUDA device (BENCH_SMOKE on the CPU)"; done
fi
run backbone_fp32 50 "$B/excel_bench_backbone" "${DEV[@]}" "${BB[@]}" --model_precision=fp32

# 1b. Gradient sync of the heads' gradients (VOC size) on the device: one all-reduce, the buckets,
#     and the heads' step without and with bucketed sync from the backward hooks; 2 ranks when the
#     node has 2 GPUs.
ranks=1
[ "$CUDA" = 1 ] && [ "$(nvidia-smi -L 2>/dev/null | grep -c '^GPU ')" -ge 2 ] && ranks=2
run allreduce 40 env OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 \
  mpirun -np "$ranks" "$B/excel_bench_allreduce" "${DEV[@]}" "${AR[@]}"

# 2. The trainer's step online and from the cache, before and after the switch (a ViT-B/16-sized
#    attribute bank from a random CLIP first: the bench needs one).
bank_ok=0
if [ "$(left)" -gt 30 ] && timeout 120 bash -c '
    "$1/data_tools/make_synthetic_voc" --data_root="$2/voc" --data_num_images=4 --data_min_side=64 --data_max_side=80 &&
    "$1/data_tools/build_bpe_vocab" --bank_descriptions="$2/voc/descriptions.json" --model_bpe="$2/bpe.txt.gz" &&
    "$1/data_tools/make_random_clip" --model_vit_b16 --output_dir="$2/clip" --model_bpe="$2/bpe.txt.gz" &&
    "$1/data_tools/build_attribute_bank" --bank_descriptions="$2/voc/descriptions.json" \
      --model_clip="$2/clip/clip.jit.pt" --model_bpe="$2/bpe.txt.gz" --bank_clusters=16 --model_bank="$2/bank.h5"' \
    _ "$BUILD" "$W" >"$W/bank.txt" 2>&1; then
  bank_ok=1
  rm -rf "$W/clip"
fi
if [ "$bank_ok" = 1 ]; then
  run cache_train 120 "$B/excel_bench_cache" "${DEV[@]}" "${BC[@]}" --model_bank="$W/bank.h5" \
    --model_bpe="$W/bpe.txt.gz" --bench_work_dir="$W/cache"
else
  tail -5 "$W/bank.txt"
  say "FAIL cache_train: no ViT-B/16 attribute bank (out of time, or the tools failed: above)"; status=1
fi

# 3. The reference step on the same device, when the bundle carries it.
REF_DIR=${REFERENCE_DIR:-}
ref_tar=${GPU_BUNDLE_DIR:-gpu_bundle}/reference/excel-ref.tar.xz
if [ -z "$REF_DIR" ] && [ -f "$ref_tar" ]; then
  REF_DIR=$W/excel-ref
  mkdir -p "$REF_DIR" && tar -xJf "$ref_tar" -C "$REF_DIR"
fi
if [ -z "$REF_DIR" ]; then
  skip reference "no reference code (make the bundle with scripts/gpu_bundle.sh --reference DIR, or set REFERENCE_DIR)"
elif [ ! -f "$REF_DIR/time_reference_step.py" ]; then
  skip reference "no time_reference_step.py in $REF_DIR"
else
  PY=${BENCH_PYTHON:-python3}
  missing=$("$PY" - <<'EOF' 2>&1
import importlib
gone = []
for m in ("torch", "torchvision", "numpy", "cv2", "regex", "imageio", "matplotlib", "requests", "tqdm"):
    try:
        importlib.import_module(m)
    except Exception:
        gone.append(m)
print(" ".join(gone))
EOF
)
  if [ -n "$missing" ]; then
    skip reference "python3 lacks module(s): $missing"
  elif [ "$CUDA" = 1 ] && ! "$PY" -c 'import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)' 2>/dev/null; then
    skip reference "python3's torch sees no CUDA device"
  else
    run reference 120 "$PY" "$REF_DIR/time_reference_step.py" --ref "$REF_DIR" "${REF[@]}"
  fi
fi

# 4. Our step, split, per mode; images/s and device memory; the largest batch that fits (fp32,
#    the reference's precision). Last: its search takes what is left of the budget, up to 40 s.
search=$(( $(left) - 25 ))
[ "$search" -gt "$MAX_BATCH_S" ] && search=$MAX_BATCH_S
[ "$search" -lt 1 ] && search=1
run train_step 90 "$B/excel_bench_train" "${DEV[@]}" "${BT[@]}" --bench_max_batch_s="$search"

echo "== JSON lines"
cat "$JSONL"
echo "== summary"
python3 scripts/bench_summary.py "$JSONL"
say "done in $((SECONDS - start)) s of $budget: $([ "$status" = 0 ] && echo PASS || echo FAIL)"
exit "$status"
