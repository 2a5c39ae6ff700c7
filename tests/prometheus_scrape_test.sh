#!/usr/bin/env bash
# A real Prometheus (and Pushgateway) on 127.0.0.1 scrapes a 2-rank excel_precompute, excel_train
# and excel_eval through the target files of --metrics_sd_dir, with the shipped
# monitoring/prometheus/prometheus.yml and alerts.yml (paths and intervals rewritten). Checks:
# the host's one target file (format, every rank in it, removed at exit), `promtool check metrics` and the metrics contract
# on each rank's final /metrics, then through the HTTP API that every Grafana panel query and
# the query part of every alert returns series, that no alert holds on this healthy run, that
# both ranks of each phase were scraped, and that the pushed final values arrived.
#   prometheus_scrape_test.sh BUILD_DIR
set -euo pipefail
BUILD=$1
SRC=$(cd "$(dirname "$0")/.." && pwd)
skip() {
  [ "${CI:-}" = true ] && { echo "FAIL: CI=true but $*"; exit 1; }
  echo "SKIP: $*"; exit 77
}
for t in prometheus promtool prometheus-pushgateway python3; do
  command -v "$t" >/dev/null || skip "$t is not installed (scripts/install_deps.sh)"
done
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
export OMP_NUM_THREADS=1
CHECK=(python3 "$SRC/tests/monitoring_check.py")
NP=2
LINGER=15            # > Prometheus' discovery + scrape-manager update delay (up to 2 x 5 s) + 2 scrapes
MAX_ITERS=150        # ~10 s of training on 2 cores: several scrapes while it steps
GLOBAL_BATCH=4
JOB="monitest$$"

work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -- -"$p" 2>/dev/null || kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT
failures=()
fail() { echo "FAIL: $*"; failures+=("$*"); }
now() { date +%s.%N; }

read -r PROM_PORT PGW_PORT PRE_PORT TRAIN_PORT EVAL_PORT <<<"$("${CHECK[@]}" ports 5)"

# Tiny data, vocabulary, CLIP and attribute bank, as launch/run_demo.sh makes them.
bash "$SRC/launch/make_tiny_world.sh" "$BUILD" "$work" --data_num_images=12 --data_min_side=80 --data_max_side=120 2>/dev/null
export EXCEL_BPE_PATH="$work/bpe.txt.gz"
TRAIN_IMAGES=$(grep -c . "$work/voc/ImageSets/Segmentation/train.txt")
VAL_IMAGES=$(grep -c . "$work/voc/ImageSets/Segmentation/val.txt")
CACHE_VIEWS=2

# The shipped configuration with the target directory, the intervals and the Pushgateway rewritten.
mkdir -p "$work/prom" "$work/sd"
cp "$SRC/monitoring/prometheus/prometheus.yml" "$SRC/monitoring/prometheus/alerts.yml" "$work/prom/"
sed -i -e "s#/var/lib/excel/targets/#$work/sd/#" -e 's/scrape_interval: 15s/scrape_interval: 1s/' \
  -e 's/evaluation_interval: 15s/evaluation_interval: 1s/' -e "s/127.0.0.1:9091/127.0.0.1:$PGW_PORT/" \
  "$work/prom/prometheus.yml"
for s in "$work/sd/excel_\*.json" "scrape_interval: 1s" "evaluation_interval: 1s" "127.0.0.1:$PGW_PORT"; do
  grep -q "$s" "$work/prom/prometheus.yml" || { echo "FAIL: prometheus.yml no longer has the value the test rewrites to $s"; exit 1; }
done
promtool check config "$work/prom/prometheus.yml" >/dev/null

setsid timeout 280 prometheus --config.file="$work/prom/prometheus.yml" --storage.tsdb.path="$work/tsdb" \
  --web.listen-address="127.0.0.1:$PROM_PORT" --log.level=warn >"$work/prometheus.log" 2>&1 &
pids+=($!)
setsid timeout 280 prometheus-pushgateway --web.listen-address="127.0.0.1:$PGW_PORT" --log.level=warn \
  >"$work/pushgateway.log" 2>&1 &
pids+=($!)
PROM="http://127.0.0.1:$PROM_PORT"
for _ in $(seq 1 100); do
  python3 -c "import urllib.request as u; u.urlopen('$PROM/-/ready', timeout=1)" 2>/dev/null && break
  sleep 0.2
done
python3 -c "import urllib.request as u; u.urlopen('$PROM/-/ready', timeout=1)" ||
  { cat "$work/prometheus.log"; echo "FAIL: Prometheus did not start"; exit 1; }

# Flags every tool gets (into MFLAGS); the port base differs per phase.
metrics_flags() {
  MFLAGS=(--metrics_port="$1" --metrics_sd_dir="$work/sd" --metrics_job_id="$JOB" --metrics_linger_s="$LINGER"
    --metrics_pushgateway="127.0.0.1:$PGW_PORT")
}
COMMON=(--data_root="$work/voc" --model_clip="$work/clip/clip.jit.pt" --model_bank="$work/bank.h5" --threads=1)

precompute_cmd() {
  metrics_flags "$PRE_PORT"
  CMD=("$BUILD/src/excel_precompute" "${COMMON[@]}" --data_split=train --model_crop=64 --cache_dir="$work/cache"
    --data_views="$CACHE_VIEWS" --cache_dtype=fp16 "${MFLAGS[@]}")
}
train_cmd() {
  metrics_flags "$TRAIN_PORT"
  CMD=("$BUILD/src/excel_train" "${COMMON[@]}" --data_train_split=train --data_val_split=val --model_crop=64
    --model_adapter_dim=16 --train_batch=$((GLOBAL_BATCH / NP)) --train_max_iters="$MAX_ITERS" --train_warmup_iters=5
    --train_switch_iter=60 --train_pred_target_iter=90 --train_log_every=50 --eval_every=50 --eval_limit=3
    --ckpt_every=75 --output_dir="$work/train" "${MFLAGS[@]}")
}
# >>> excel_eval's invocation: if its flags change, adjust this function (nothing else). <<<
# Checkpoint mode, so that both kinds of excel_eval_miou_ratio (pseudo_label, segmentation) exist.
eval_cmd() {
  metrics_flags "$EVAL_PORT"
  CMD=("$BUILD/src/excel_eval" "${COMMON[@]}" --data_split=val --model_crop=64 --eval_mode=checkpoint
    --eval_checkpoint="$work/train/checkpoint.h5" --eval_scales=64 --output_dir="$work/eval"
    "${MFLAGS[@]}")
}

# run_phase PHASE PORT_BASE: mpirun -np 2 <phase>_cmd while watching its targets and /metrics.
declare -A T0 T1
run_phase() {
  local phase=$1 base=$2 rc=0
  "${phase}_cmd"
  T0[$phase]=$(now)
  if [ ! -x "${CMD[0]}" ]; then
    T1[$phase]=$(now)
    fail "$phase: ${CMD[0]} is not built"
    return
  fi
  setsid timeout 150 mpirun -np "$NP" "${CMD[@]}" >"$work/$phase.log" 2>&1 &
  local pid=$!
  pids+=("$pid")
  local seen
  seen=$("${CHECK[@]}" watch --pid "$pid" --sd-dir "$work/sd" --job "$JOB" --phase "$phase" --np "$NP" \
    --base "$base" --out-dir "$work/dump/$phase" --timeout 160)
  wait "$pid" || rc=$?
  local keep=() p
  for p in "${pids[@]}"; do [ "$p" = "$pid" ] || keep+=("$p"); done
  pids=("${keep[@]}")
  T1[$phase]=$(now)
  echo "== $phase: exit $rc, $(python3 -c "import sys,json; d=json.loads(sys.argv[1]); print('target files', {f: v['ranks'] for f, v in d['files'].items()}, 'scrapes per rank', d['scrapes'])" "$seen")"
  if [ "$rc" -ne 0 ]; then
    fail "$phase: mpirun exited $rc; last lines:"
    tail -n 5 "$work/$phase.log" | sed 's/^/    /'
  fi
  python3 - "$seen" "$phase" "$NP" <<'EOF' || fail "$phase: target files"
import json, sys
d, phase, np_ = json.loads(sys.argv[1]), sys.argv[2], int(sys.argv[3])
bad = d["sd_errors"] + [f"stray target file {f}" for f in d["stray_files"]]
# One host: one file, excel_<job_id>_<phase>_<host>.json, listing every rank once all had started.
if len(d["files"]) != 1 or any(sorted(f["ranks"]) != [str(r) for r in range(np_)] or f["max_groups"] != np_
                               for f in d["files"].values()):
    bad.append(f"target files seen {d['files']}: want this host's one file with ranks 0..{np_ - 1} in it at once")
for r, n in enumerate(d["scrapes"]):
    if n == 0:
        bad.append(f"rank {r}'s advertised target never answered /metrics")
for b in bad:
    print("    " + b)
sys.exit(1 if bad else 0)
EOF
  local left
  left=$(compgen -G "$work/sd/*_${phase}_*" || true)
  [ -z "$left" ] || fail "$phase: target files left after exit: $left"
  for r in $(seq 0 $((NP - 1))); do
    local dump="$work/dump/$phase/rank$r.prom"
    [ -f "$dump" ] || continue
    promtool check metrics <"$dump" >"$work/lint.txt" 2>&1 || { fail "$phase rank $r: promtool check metrics"; sed 's/^/    /' "$work/lint.txt"; }
  done
}

run_phase precompute "$PRE_PORT"
"${CHECK[@]}" exposition --phase precompute --job "$JOB" --np $NP --t0 "${T0[precompute]}" --t1 "${T1[precompute]}" \
  --rows $((TRAIN_IMAGES * CACHE_VIEWS)) "$work"/dump/precompute/rank{0,1}.prom || fail "precompute: metrics contract"
run_phase train "$TRAIN_PORT"
"${CHECK[@]}" exposition --phase train --job "$JOB" --np $NP --t0 "${T0[train]}" --t1 "${T1[train]}" \
  --max-iters $MAX_ITERS --global-batch $GLOBAL_BATCH "$work"/dump/train/rank{0,1}.prom || fail "train: metrics contract"
T_HEALTHY=$(python3 -c "print(${T1[train]} - 4)")   # both train ranks lingering, everything final
run_phase eval "$EVAL_PORT"
"${CHECK[@]}" exposition --phase eval --job "$JOB" --np $NP --t0 "${T0[eval]}" --t1 "${T1[eval]}" \
  --images "$VAL_IMAGES" "$work"/dump/eval/rank{0,1}.prom || fail "eval: metrics contract"
sleep 3   # a last scrape of the Pushgateway and a last rule evaluation

# Queries that can only have data on CUDA builds (GPU memory): allowed to return nothing here.
CUDA_ONLY=(--allow excel_gpu_memory_used_bytes)
"${CHECK[@]}" prometheus --url "$PROM" --dashboard "$SRC/monitoring/grafana/dashboards/excel_training.json" \
  --job "$JOB" --np $NP --t0 "${T0[precompute]}" --t1 "$(now)" --t-healthy "$T_HEALTHY" --t-end "$(now)" \
  --rate-interval 30s --min-alerts 8 --phase "precompute:$PRE_PORT" --phase "train:$TRAIN_PORT" \
  --phase "eval:$EVAL_PORT" --pushgateway "${CUDA_ONLY[@]}" || fail "Prometheus queries"

if [ ${#failures[@]} -gt 0 ]; then
  echo "prometheus.log (warnings):"; tail -n 5 "$work/prometheus.log" | sed 's/^/    /'
  printf 'FAILED: %s\n' "${failures[@]}"
  exit 1
fi
echo "PASS"
