# Sourced by the shell tests (after BUILD=$1): mpirun as root, fail(), and a tiny data set
# (synthetic VOC with its descriptions, its BPE vocabulary, random CLIP, attribute bank). Needs
# nothing outside the repository.
SRC_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
fail() { echo "FAIL: $*"; exit 1; }

# use_work_dir: $work, a temporary folder removed at exit, and $bg, a background process group
# (setsid) that is killed at exit when set.
use_work_dir() {
  work=$(mktemp -d)
  bg=""
  trap 'if [ -n "$bg" ]; then kill -9 -- -"$bg" 2>/dev/null || true; fi; rm -rf "$work"' EXIT
}

# make_tiny_data DIR NUM_IMAGES MIN_SIDE MAX_SIDE: the demo's world (launch/make_tiny_world.sh) in
# DIR: DIR/voc, DIR/bpe.txt.gz, DIR/clip/clip.jit.pt, DIR/bank.h5; the tools then find the
# vocabulary through EXCEL_BPE_PATH.
make_tiny_data() {
  bash "$SRC_DIR/launch/make_tiny_world.sh" "$BUILD" "$1" --data_num_images="$2" --data_min_side="$3" \
    --data_max_side="$4" 2>/dev/null
  export EXCEL_BPE_PATH="$1/bpe.txt.gz"
}

# slurm_conf_common WORK: the slurm.conf lines both SLURM tests share (root daemons, munge socket,
# state, spool, pid and log files under WORK, per node name; no accounting), for a test to put
# between its cluster, port and node lines.
slurm_conf_common() {
  cat <<EOC
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$1/munge/munge.socket
CommunicationParameters=NoCtldInAddrAny,NoInAddrAny
StateSaveLocation=$1/state
SlurmdSpoolDir=$1/spool/%n
SlurmctldPidFile=$1/slurmctld.pid
SlurmdPidFile=$1/slurmd-%n.pid
SlurmctldLogFile=$1/log/slurmctld.log
SlurmdLogFile=$1/log/slurmd-%n.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
SlurmdParameters=config_overrides
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
MpiDefault=none
ReturnToService=2
MinJobAge=600
KillWait=5
EOC
}
