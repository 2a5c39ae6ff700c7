#!/usr/bin/env bash
# common/logging (src/common/logging.cpp), run as processes: with --log_dir=DIR a tool writes its
# glog files there (named .rankN, every line rank-prefixed) and still prints every line on stderr;
# the error that ends a tool goes through glog (rank prefix, log file) and keeps its exit status
# (1 for make_synthetic_voc, 1 for a missing input of excel_eval); without --log_dir no file is
# written and stderr carries the rank-prefixed lines.
#   logging_test.sh BUILD_DIR
set -euo pipefail
BUILD=$(cd "$1" && pwd)
# shellcheck source=tests/test_lib.sh
source "$(dirname "$0")/test_lib.sh"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
VOC=(--data_num_images=2 --data_min_side=64 --data_max_side=64)

# A good run as rank 1 of a launcher: its files in --log_dir, its progress on stderr as well.
rc=0
err=$(cd "$work" && OMPI_COMM_WORLD_RANK=1 timeout 120 "$BUILD/data_tools/make_synthetic_voc" --data_root="$work/voc" \
  "${VOC[@]}" --log_dir="$work/logs" 2>&1 >/dev/null) || rc=$?
[ "$rc" -eq 0 ] || { echo "$err"; fail "make_synthetic_voc --log_dir exited $rc"; }
info=$(find "$work/logs" -name 'make_synthetic_voc.*.log.INFO.*.rank1' -type f | head -1)
[ -n "$info" ] || { ls -la "$work/logs"; fail "no INFO log file of rank 1 in --log_dir"; }
grep -qE '^I[0-9]{4} [0-9:.]+ rank1 +[0-9]+ make_synthetic_voc\.cpp:[0-9]+\] wrote ' "$info" \
  || { cat "$info"; fail "no rank-prefixed 'wrote' line in $info"; }
grep -qE '^I[0-9]{4} .* rank1 .*\] wrote ' <<<"$err" || { echo "$err"; fail "the progress line is not on stderr too"; }
echo "ok: $(basename "$info"): $(grep -m1 '\] wrote ' "$info")"

# The error that ends a tool: exit 1, an E line with the rank prefix in the log file and on stderr.
rc=0
err=$(OMPI_COMM_WORLD_RANK=1 timeout 120 "$BUILD/data_tools/make_synthetic_voc" --data_root=/dev/null/voc "${VOC[@]}" \
  --log_dir="$work/logs_err" 2>&1) || rc=$?
[ "$rc" -eq 1 ] || { echo "$err"; fail "a failing make_synthetic_voc exited $rc, expected 1"; }
line='^E[0-9]{4} [0-9:.]+ rank1 +[0-9]+ make_synthetic_voc\.cpp:[0-9]+\] make_synthetic_voc: error: '
errfile=$(find "$work/logs_err" -name 'make_synthetic_voc.*.log.ERROR.*.rank1' -type f | head -1)
[ -n "$errfile" ] && grep -qE "$line" "$errfile" || { ls -la "$work/logs_err"; fail "no rank-prefixed error in an ERROR log file"; }
grep -qE "$line" <<<"$err" || { echo "$err"; fail "the error is not on stderr with the rank prefix"; }
echo "ok: $(grep -m1 -E "$line" "$errfile")"

# An MPI tool (one rank, no launcher): the error of run_mpi_main goes to its log file too.
rc=0
err=$(timeout 120 "$BUILD/src/excel_eval" --data_root="$work/voc" --model_clip="$work/missing.pt" \
  --model_bank="$work/missing.h5" --model_crop=64 --threads=1 --output_dir="$work/eval" --log_dir="$work/logs_mpi" 2>&1) || rc=$?
[ "$rc" -eq 1 ] || { echo "$err"; fail "excel_eval with a missing checkpoint exited $rc, expected 1"; }
line='^E[0-9]{4} [0-9:.]+ rank0 +[0-9]+ app_common\.cpp:[0-9]+\] excel_eval: error: '
errfile=$(find "$work/logs_mpi" -name 'excel_eval.*.log.ERROR.*.rank0' -type f | head -1)
[ -n "$errfile" ] && grep -qE "$line" "$errfile" || { ls -la "$work/logs_mpi"; echo "$err"; fail "no rank-prefixed excel_eval error in its log file"; }
echo "ok: excel_eval exit $rc: $(grep -m1 -E "$line" "$errfile")"

# Without --log_dir: stderr only (as before), no glog file in the working or temporary folder.
mkdir "$work/cwd"
rc=0
err=$(cd "$work/cwd" && TMPDIR="$work/cwd" GLOG_log_dir= timeout 120 "$BUILD/data_tools/make_synthetic_voc" \
  --data_root="$work/voc2" "${VOC[@]}" 2>&1 >/dev/null) || rc=$?
[ "$rc" -eq 0 ] || { echo "$err"; fail "make_synthetic_voc exited $rc"; }
grep -qE '^I[0-9]{4} .* rank0 .*\] wrote ' <<<"$err" || { echo "$err"; fail "no rank-prefixed line on stderr"; }
[ -z "$(ls -A "$work/cwd")" ] || { ls -la "$work/cwd"; fail "log files written without --log_dir"; }
echo "PASS: --log_dir files with rank-prefixed lines, errors through glog, stderr unchanged without it"
