#!/usr/bin/env bash
# SLURM across simulated hosts (tests/multinode/hosts.sh): slurmctld on mn3, one slurmd on each of
# mn1 and mn2 (NodeName/NodeHostname = the host, NodeAddr = its address on the bridge), munged in
# the root namespace (its socket is a file, reachable from every namespace). Each slurmd gets a
# mount namespace of its own with a private /tmp, as separate machines have: PMIx's per-step
# directory /tmp/spmix_appdir_<uid>_<job>.<step> has the same name on every node, and a second
# node sharing /tmp fails the step ("Cannot create directory ... File exists"). Checks that
# `sbatch --nodes=2 --ntasks-per-node=2 slurm/train.sbatch` completes through srun --mpi=pmix with
# local ranks 0 and 1 on each host.
#   multinode_slurm_test.sh BUILD_DIR
set -euo pipefail
BUILD=$(realpath -m "$1")
# shellcheck source=tests/test_lib.sh
source "$(dirname "$0")/test_lib.sh"
# shellcheck source=tests/multinode/hosts.sh
source "$(dirname "$0")/multinode/hosts.sh"
# shellcheck source=tests/multinode/jobs.sh
source "$(dirname "$0")/multinode/jobs.sh"
export PATH="$PATH:/usr/sbin:/sbin"
start_s=$(date +%s)

mn_require
for b in munged slurmctld slurmd sbatch srun sinfo squeue scontrol nsenter; do
  command -v "$b" >/dev/null || mn_skip "$b is not installed (scripts/install_deps.sh)"
done
# Not under /tmp, which every node replaces with its own.
work=$(mktemp -d /var/tmp/excel-mn-slurm.XXXXXX)
chmod 755 "$work"  # munged refuses a socket folder others may write; slurmd reads the spool
daemons=()
job=""
mn_on_exit() {
  [ -n "$job" ] && mn_exec mn1 scancel "$job" 2>/dev/null
  local rc=0
  mn_stop_pids "${daemons[@]}" || rc=1  # munged; the rest went with the namespaces
  rm -rf "$work"
  return $rc
}
mn_setup 3 "$work/mn"
mkdir -p "$work"/{munge,state,log,out,spool}
cat > "$work/slurm.conf" <<EOC
ClusterName=excel-mn
SlurmctldHost=mn3($MN_SUBNET.3)
SlurmctldPort=6817
SlurmdPort=6818
$(slurm_conf_common "$work")
NodeName=mn1 NodeHostname=mn1 NodeAddr=$MN_SUBNET.1 CPUs=2 RealMemory=1000 State=UNKNOWN
NodeName=mn2 NodeHostname=mn2 NodeAddr=$MN_SUBNET.2 CPUs=2 RealMemory=1000 State=UNKNOWN
PartitionName=test Nodes=mn1,mn2 Default=YES MaxTime=30 State=UP
EOC
export SLURM_CONF="$work/slurm.conf"
logs() { tail -n 15 "$work"/log/*; }

dd if=/dev/urandom of="$work/munge/munge.key" bs=1024 count=1 status=none
chmod 400 "$work/munge/munge.key"
timeout 280 munged --foreground --key-file="$work/munge/munge.key" --socket="$work/munge/munge.socket" \
  --pid-file="$work/munge/munged.pid" --log-file="$work/log/munged.log" --seed-file="$work/munge/seed" \
  > "$work/log/munged.out" 2>&1 &
daemons+=($!)
for _ in $(seq 1 50); do [ -S "$work/munge/munge.socket" ] && break; sleep 0.1; done
[ -S "$work/munge/munge.socket" ] || { logs; fail "munged did not start"; }
mn_exec mn3 timeout 280 slurmctld -D -c -f "$SLURM_CONF" > "$work/log/slurmctld.out" 2>&1 &
disown  # killed with its namespace at the end, quietly
# slurmd through nsenter, not `ip netns exec`, which remounts /sys and so hides the cgroup file
# systems slurmd needs; its own mount namespace gets the host's /etc/hosts and a private /tmp.
# A checkout or build under /tmp stays visible on the nodes: bound into the private /tmp at its path.
keep=()
for d in "$SRC_DIR" "$BUILD"; do
  case "$d" in /tmp/*) keep+=("$d") ;; esac
done
for h in mn1 mn2; do
  mkdir -p "$work/tmp-$h" && chmod 1777 "$work/tmp-$h"
  # shellcheck disable=SC2016  # expanded by the inner sh
  timeout 280 nsenter --net="/run/netns/$(mn_ns $h)" unshare --uts --mount --propagation private sh -c \
    't=$1 hosts=$2 node=$3 conf=$4; shift 4
     for d in "$@"; do mkdir -p "$t/${d#/tmp/}" && mount --bind "$d" "$t/${d#/tmp/}" || exit 1; done
     mount --rbind "$t" /tmp && mount --bind "$hosts" /etc/hosts && hostname "$node" && exec slurmd -D -N "$node" -f "$conf"' \
    sh "$work/tmp-$h" "/etc/netns/$(mn_ns $h)/hosts" "$h" "$SLURM_CONF" "${keep[@]}" > "$work/log/slurmd-$h.out" 2>&1 &
  disown
done
idle=0
for _ in $(seq 1 120); do  # up to 60 s
  idle=$(mn_exec mn1 timeout 5 sinfo -h -t idle -o %n 2>/dev/null | wc -l || true)
  [ "$idle" = 2 ] && break
  sleep 0.5
done
[ "$idle" = 2 ] || { logs; fail "the two slurmd did not register as idle with slurmctld"; }
echo "slurm: $(mn_exec mn1 sinfo -h -o '%P %D %T %N')"

d=$work/data
make_tiny_data "$d" 8 64 96
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 BUILD_DIR="$BUILD" EXCEL_BPE_PATH="$d/bpe.txt.gz"
# The interfaces to pin across nodes (README, multi-node): the simulated network only.
export OMPI_MCA_btl=tcp,vader,self OMPI_MCA_btl_tcp_if_include=$MN_NET OMPI_MCA_oob_tcp_if_include=$MN_NET
t0=$SECONDS
job=$(cd "$SRC_DIR" && mn_exec mn1 sbatch --parsable --nodes=2 --ntasks-per-node=2 --cpus-per-task=1 --time=5 \
  --output="$work/out/train-%j.out" slurm/train.sbatch --flagfile=configs/tiny_demo.flags --data_root="$d/voc" \
  --model_clip="$d/clip/clip.jit.pt" --model_bank="$d/bank.h5" --model_bpe="$d/bpe.txt.gz" --model_crop=64 \
  --train_batch=1 --train_max_iters=4 --train_log_every=2 --eval_every=4 --ckpt_every=4 --threads=1 \
  --output_dir="$work/out/ckpt" --metrics_port=0) || { logs; fail "sbatch did not submit"; }
job=${job%%;*}
for _ in $(seq 1 600); do  # the test's timeout bounds this
  [ -z "$(mn_exec mn1 squeue -h -j "$job" 2>/dev/null)" ] && break
  sleep 0.3
done
log=$work/out/train-$job.out
info=$(mn_exec mn1 scontrol show job "$job")
state=$(grep -o 'JobState=[A-Z_]*' <<<"$info" | cut -d= -f2)
code=$(grep -o ' ExitCode=[0-9:]*' <<<"$info" | cut -d= -f2)
nodes=$(grep -o ' NodeList=[^ ]*' <<<"$info" | cut -d= -f2)
echo "job $job: JobState=$state ExitCode=$code NodeList=$nodes, $((SECONDS - t0)) s"
grep "run_tool" "$log" || true
if [ "$state" != COMPLETED ] || [ "$code" != 0:0 ]; then
  grep -v "^    @" "$log" | tail -20
  logs
  fail "sbatch --nodes=2 --ntasks-per-node=2 slurm/train.sbatch did not complete"
fi
job=""
grep -q "4 tasks on 2 node(s) via srun" "$log" || fail "the job did not run 4 tasks on 2 nodes through srun"
mn_placement "$log" 2x2 || fail "placement under SLURM"
n=$(grep -c 'excel_train.cpp.*] done:' "$log" || true)
[ "$n" = 4 ] || fail "expected 4 'done:' lines, one per rank, found $n"
[ -s "$work/out/ckpt/checkpoint.h5" ] || fail "no checkpoint.h5"
echo "PASS after $(($(date +%s) - start_s)) s"
