#!/usr/bin/env bash
# Feature cache with real mpirun ranks: build, kill midway and resume (byte-identical shards),
# detection of truncated and altered shards, refusal of a mismatched configuration.
set -euo pipefail
BUILD=$1
# shellcheck source=tests/test_lib.sh
source "$(dirname "$0")/test_lib.sh"
use_work_dir

make_tiny_data "$work" 16 200 320
P=("$BUILD/src/excel_precompute" --data_root="$work/voc" --data_split=train --model_clip="$work/clip/clip.jit.pt"
   --model_bank="$work/bank.h5" --model_crop=160 --data_views=2 --cache_dtype=fp32 --model_batch=1 --threads=1)

timeout 300 mpirun -np 2 "${P[@]}" --cache_dir="$work/a" 2>/dev/null || fail "uninterrupted precompute"
"$BUILD/data_tools/inspect_cache" --cache_dir="$work/a" || fail "verification of a fresh cache"

# Kill the whole job once a shard is being written, then rerun it.
setsid timeout 300 mpirun -np 2 "${P[@]}" --cache_dir="$work/b" >/dev/null 2>&1 &
bg=$!
for _ in $(seq 1 600); do
  compgen -G "$work/b/*.h5.tmp" >/dev/null && break
  sleep 0.05
done
sleep 0.5
kill -9 -- -"$bg" 2>/dev/null || true
wait "$bg" 2>/dev/null || true
bg=""
[ -f "$work/b/manifest.json" ] && fail "the killed run wrote a manifest"
echo "killed run left: $(ls "$work/b" | tr '\n' ' ')"
timeout 300 mpirun -np 2 "${P[@]}" --cache_dir="$work/b" 2>/dev/null || fail "resumed precompute"
for s in "$work"/a/shard-*.h5; do
  differing=$(cmp -l "$s" "$work/b/$(basename "$s")" 2>&1 | wc -l) || true
  echo "[equivalence] precompute killed and resumed vs uninterrupted, $(basename "$s"): largest difference $differing (bound 0) differing bytes"
  cmp "$s" "$work/b/$(basename "$s")" || fail "$(basename "$s") differs after kill and resume"
done
echo "resumed shards are byte-identical"

# A truncated shard and an altered byte are detected and named.
cp -r "$work/b" "$work/c"
shard="$work/c/shard-00001-of-00002.h5"
truncate -s $(( $(stat -c %s "$shard") / 2 )) "$shard"
out=$("$BUILD/data_tools/inspect_cache" --cache_dir="$work/c" 2>&1) && fail "truncated shard not detected"
grep -q "shard-00001-of-00002.h5" <<<"$out" || fail "truncation error does not name the shard: $out"
cp -r "$work/b" "$work/d"
printf '\x5a' | dd of="$work/d/shard-00000-of-00002.h5" bs=1 seek=200000 conv=notrunc status=none
out=$("$BUILD/data_tools/inspect_cache" --cache_dir="$work/d" 2>&1) && fail "altered shard not detected"
grep -q "shard-00000-of-00002.h5.*checksum" <<<"$out" || fail "alteration error does not name shard and checksum: $out"

# A cache built with another configuration is refused, naming the field.
out=$(timeout 300 mpirun -np 2 "${P[@]}" --cache_dir="$work/b" --cache_dtype=fp16 2>&1) && fail "mismatched dtype accepted"
grep -q "dtype = fp32" <<<"$out" || fail "refusal does not name the field: $out"
echo "PASS"
