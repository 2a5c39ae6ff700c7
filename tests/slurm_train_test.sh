#!/usr/bin/env bash
# tests/slurm_train_test.sh BUILD_DIR: a real one-node SLURM cluster (munged, slurmctld,
# slurmd, everything under a temporary folder, bound to localhost) runs slurm/train.sbatch with
# 2 tasks on tiny synthetic data; the job must end COMPLETED 0:0 with both ranks of one 2-rank world
# and a checkpoint. SLURM and MUNGE come from scripts/install_deps.sh. Exit 77 (skip) where they
# are missing or cannot start here, except that missing binaries fail under CI=true.
set -euo pipefail
[ $# -ge 1 ] || { echo "usage: $0 BUILD_DIR" >&2; exit 2; }
BUILD=$(realpath -m "$1")
SRC=$(cd "$(dirname "$0")/.." && pwd)
export PATH="$PATH:/usr/sbin:/sbin"
# shellcheck source=tests/test_lib.sh
source "$(dirname "$0")/test_lib.sh"
skip() { echo "SKIP: $*"; exit 77; }

missing=()
for b in munged slurmctld slurmd sbatch srun sinfo squeue scontrol python3; do
  command -v "$b" >/dev/null || missing+=("$b")
done
if [ ${#missing[@]} -gt 0 ]; then
  [ "${CI:-}" = true ] && fail "CI=true but ${missing[*]} missing (scripts/install_deps.sh installs them)"
  skip "${missing[*]} not installed (scripts/install_deps.sh)"
fi
[ "$(id -u)" -eq 0 ] || skip "slurmd must run as root to start job steps"

work=$(mktemp -d /tmp/excel-slurm.XXXXXX)
chmod 755 "$work"  # munged refuses a socket folder others may write; slurmd reads the spool
pids=()
job=""
cleanup() {
  local p i
  if [ -n "$job" ]; then  # a job still running would outlive slurmd in its slurmstepd
    scancel "$job" 2>/dev/null || true
    for _ in $(seq 1 100); do [ -z "$(squeue -h -j "$job" 2>/dev/null)" ] && break; sleep 0.1; done
  fi
  for ((i = ${#pids[@]} - 1; i >= 0; i--)); do kill "${pids[i]}" 2>/dev/null || true; done
  for p in "${pids[@]}"; do  # slurmd/slurmctld/munged exit within seconds of SIGTERM
    for _ in $(seq 1 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$p" 2>/dev/null || continue
    pkill -9 -P "$p" 2>/dev/null || true  # the daemon under this `timeout`, then `timeout`
    kill -9 "$p" 2>/dev/null || true
  done
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 1' INT TERM
daemon_logs() { tail -n 20 "$work"/log/*.log 2>/dev/null || true; }

# --- configuration: ports free now on 127.0.0.1, this machine's CPUs (at least 2) and memory ---
read -r ctld_port slurmd_port < <(python3 -c '
import socket
s = [socket.socket() for _ in range(2)]
for x in s: x.bind(("127.0.0.1", 0))
print(*(x.getsockname()[1] for x in s))')
cpus=$(nproc)
[ "$cpus" -ge 2 ] || cpus=2  # SlurmdParameters=config_overrides accepts the node as configured
mem_mb=$(( $(awk '/MemTotal/ {print $2}' /proc/meminfo) * 9 / 10240 ))  # 90% of MemTotal (kB)
mkdir -p "$work"/{munge,state,spool,log,out,data}
cat >"$work/slurm.conf" <<EOF
ClusterName=excel-test
SlurmctldHost=localhost
SlurmctldPort=$ctld_port
SlurmdPort=$slurmd_port
$(slurm_conf_common "$work")
NodeName=localhost NodeHostname=localhost NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$mem_mb State=UNKNOWN
PartitionName=test Nodes=localhost Default=YES MaxTime=30 State=UP
EOF
export SLURM_CONF="$work/slurm.conf"

# --- daemons: in the foreground of background jobs, so that their PIDs are ours to stop, and
# under `timeout`, so that they end even if this script is killed before its trap runs ---
life=240
dd if=/dev/urandom of="$work/munge/munge.key" bs=1024 count=1 status=none
chmod 400 "$work/munge/munge.key"
timeout -k 5 $life munged --foreground --key-file="$work/munge/munge.key" --socket="$work/munge/munge.socket" \
  --pid-file="$work/munge/munged.pid" --log-file="$work/log/munged.log" --seed-file="$work/munge/seed" \
  >"$work/log/munged.out" 2>&1 &
pids+=($!)
for _ in $(seq 1 50); do [ -S "$work/munge/munge.socket" ] && break; sleep 0.1; done
[ -S "$work/munge/munge.socket" ] || { cat "$work/log/munged.out"; daemon_logs; skip "munged did not start"; }
timeout -k 5 $life slurmctld -D -c -f "$SLURM_CONF" >"$work/log/slurmctld.out" 2>&1 &
pids+=($!)
timeout -k 5 $life slurmd -D -N localhost -f "$SLURM_CONF" >"$work/log/slurmd.out" 2>&1 &
pids+=($!)
state=""
for _ in $(seq 1 120); do  # 60 s, less if a daemon exits
  state=$(timeout 5 sinfo -h -n localhost -o %T 2>/dev/null || true)
  [ "$state" = idle ] && break
  for p in "${pids[@]}"; do kill -0 "$p" 2>/dev/null || state="$state, a daemon exited"; done
  [[ "$state" = *exited ]] && break
  sleep 0.5
done
if [ "$state" != idle ]; then
  cat "$work"/log/*.out; daemon_logs
  skip "SLURM did not come up here: node state '${state:-none}' (60 s limit)"
fi
echo "slurm up: $(sinfo -h -o '%P %D %T %c CPUs'); srun --mpi=list: $(srun --mpi=list 2>&1 | tr -s '\n\t ' ' ')"

# --- tiny data set and CLIP, as launch/run_demo.sh makes them ---
d="$work/data"
bash "$SRC/launch/make_tiny_world.sh" "$BUILD" "$d" --data_num_images=8 --data_min_side=64 --data_max_side=96 \
  --data_seed=0 --model_seed=0 2>/dev/null || fail "launch/make_tiny_world.sh"

# --- the jobs: 2 tasks on the one node, online training with validation at the end; once through
# run_tool.sh's own choice of launcher and once through mpirun inside the allocation ---
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 BUILD_DIR="$BUILD"
# One node: shared memory between ranks, OpenMPI's out-of-band channel on localhost only.
export OMPI_MCA_btl=self,vader OMPI_MCA_oob_tcp_if_include=lo
train_job() {  # train_job LAUNCHER FLAGFILE_ENV FLAGFILE_FLAG: submit, wait (bounded), check
  local launcher=$1 info jstate jexit n
  job=$(cd "$SRC" && EXCEL_LAUNCHER=$launcher EXCEL_FLAGFILE=$2 sbatch --parsable --nodes=1 \
    --ntasks-per-node=2 --cpus-per-task=1 --time=5 --output="$work/out/train-%j.out" slurm/train.sbatch \
    ${3:+"$3"} --data_root="$d/voc" --model_clip="$d/clip/clip.jit.pt" \
    --model_bank="$d/bank.h5" --model_bpe="$d/bpe.txt.gz" --model_crop=64 --train_batch=2 --train_max_iters=4 --train_log_every=2 \
    --eval_every=4 --ckpt_every=4 --output_dir="$work/out/ckpt-$launcher" --metrics_port=0) ||
    fail "sbatch did not submit"
  job=${job%%;*}
  for _ in $(seq 1 300); do  # 60 s (sbatch --wait would poll only every few seconds)
    [ -z "$(squeue -h -j "$job" 2>/dev/null)" ] && break
    sleep 0.2
  done
  log="$work/out/train-$job.out"
  [ -f "$log" ] && sed 's/^/  | /' "$log"
  info=$(scontrol show job "$job" 2>&1)
  jstate=$(grep -o 'JobState=[A-Z_]*' <<<"$info" | cut -d= -f2 || true)
  jexit=$(grep -o ' ExitCode=[0-9:]*' <<<"$info" | cut -d= -f2 || true)
  echo "job $job ($launcher): JobState=$jstate ExitCode=$jexit"
  if [ "$jstate" != COMPLETED ] || [ "$jexit" != 0:0 ]; then
    daemon_logs
    fail "job $job did not complete"
  fi
  # Both ranks of one world: rank 0 validates, rank 1 says it does not (a rank started as a
  # singleton world of its own would be rank 0 and validate too).
  n=$(grep -c 'excel_train.cpp.*] done:' "$log" || true)
  [ "$n" -eq 2 ] || fail "job $job: expected 2 'done:' lines (one per rank), found $n"
  grep -q 'done:.*validation: segmentation mIoU' "$log" || fail "job $job: no 'done:' line from rank 0"
  grep -q 'done:.*validation runs on rank 0' "$log" || fail "job $job: no 'done:' line from rank 1"
  [ -s "$work/out/ckpt-$launcher/checkpoint.h5" ] || fail "job $job: no checkpoint.h5"
  job=""
}
train_job auto "" --flagfile=configs/tiny_demo.flags  # flag file on the command line
train_job mpirun configs/tiny_demo.flags ""           # flag file from $EXCEL_FLAGFILE
echo "PASS"
