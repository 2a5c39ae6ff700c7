#!/usr/bin/env bash
# Every executable answers --help with its usage line and only this project's flags, grouped by
# concern, and exits 0 (no MPI start, no LibTorch-internal flags).
set -euo pipefail
BUILD=$1
fail() { echo "FAIL: $*"; exit 1; }
check() {  # TOOL FLAG_IT_MUST_LIST
  local out
  out=$("$BUILD/$1" --help 2>&1) || fail "$1 --help exited non-zero"
  head -1 <<<"$out" | grep -qE "^(usage: |[A-Z]|excel_)" || fail "$1 --help does not open with a usage line: $(head -1 <<<"$out")"
  grep -q -- "--$2 " <<<"$out" || fail "$1 --help does not list --$2"
  if grep -qiE "caffe2|torch_jit|--tryfromenv|--logtostderr" <<<"$out"; then fail "$1 --help lists library flags"; fi
  echo "$1: $(grep -c '^  --' <<<"$out") flags in $(grep -cE '^[a-z]+:$' <<<"$out") groups"
}
check src/excel_train train_batch
check src/excel_eval eval_mode
check src/excel_precompute cache_dir
check src/excel_cam_demo data_root
check src/excel_dump_stages input
check data_tools/make_synthetic_voc data_num_images
check data_tools/build_attribute_bank bank_descriptions
check data_tools/import_attribute_bank bank_pth
check data_tools/pretrain_tiny_clip train_dense_pool
check bench/excel_bench_backbone bench_batches
# The train tool's groups: one heading per concern, in order.
"$BUILD/src/excel_train" --help | grep -E '^[a-z]+:$' | tr '\n' ' ' | grep -q "general: data: model: train: eval: ckpt: cache: comm: metrics: fault:" \
  || fail "excel_train --help groups: $("$BUILD/src/excel_train" --help | grep -E '^[a-z]+:$' | tr '\n' ' ')"
echo "PASS"
