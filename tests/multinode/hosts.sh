# shellcheck shell=bash
# Simulated hosts on one machine, for multi-node tests without a network (sourced; bash).
#
# Each host mnI is a network namespace of its own (named $MN_PREFIX"hI", unique to this shell) whose
# processes also get a UTS namespace with host name mnI. The hosts' veths plug into a bridge that
# lives in one more namespace ($MN_PREFIX"sw"), so the root namespace gets no interface, address or
# route: the test's addresses ($MN_NET, mnI = .I) exist only inside its namespaces, and nothing can
# leave them (only mn_root_port, for a test's Prometheus, puts the root namespace on the bridge, with
# a route to $MN_NET and nowhere else; the bridge has no uplink). Names resolve through /etc/netns/NS/hosts, which `ip netns exec` mounts over
# /etc/hosts inside NS. mpirun runs on mn1 (mn_exec mn1 mpirun ...); OpenMPI reaches the other hosts
# through the rsh agent $MN_AGENT, which enters the target host's namespaces like ssh would.
#
#   source tests/multinode/hosts.sh
#   mn_require                       # exit 77 (SKIP) when not root or namespaces do not work; a missing tool fails under CI=true
#   mn_setup 2 "$work/mn"            # hosts mn1, mn2; the teardown is trapped on EXIT, INT and TERM
#   mn_hostfile "$work/hosts" 2 2    # mn1 slots=2, mn2 slots=2
#   mn_exec mn1 mpirun --hostfile "$work/hosts" -np 4 "${MN_MPIRUN_ARGS[@]}" CMD ...
#   mn_kill_host mn2 / mn_link mn2 down  # a host that dies / stops answering
#   mn_root_port                     # the root namespace on the bridge too, as $MN_SUBNET.254
#
# The teardown kills every process left in the namespaces, deletes them (and so the veths and the
# bridge) and their /etc/netns entries, then checks that nothing of this test is left
# (`ip netns list`, `ip link`, processes) and fails the script when something is; then it calls
# the test's mn_on_exit, if defined, whose non-zero status also fails the script.

MN_PREFIX=exmn$$
MN_BRIDGE=exbr$$
MN_SUBNET=10.213.$(($$ % 256))
MN_NET=$MN_SUBNET.0/24
MN_HOSTS=()
MN_DIR=""
MN_AGENT=""
MN_MPIRUN_ARGS=()

# A missing tool fails under CI=true (scripts/install_deps.sh installs it); a machine whose kernel
# or sandbox refuses namespaces is skipped everywhere, loudly, since no install can change that.
mn_skip() {
  [ "${CI:-}" = true ] && { echo "FAIL: CI=true but $*"; exit 1; }
  echo "SKIP: $*"
  exit 77
}
mn_skip_environment() {
  echo "SKIP: $* (this machine does not allow it; the multi-node tests did not run)"
  exit 77
}

mn_ns() { echo "${MN_PREFIX}h${1#mn}"; }  # mn_ns HOST: the network namespace of HOST

# mn_require: root, ip, unshare, and a namespace that can be made and entered.
mn_require() {
  [ "$(id -u)" = 0 ] || mn_skip_environment "simulated hosts need root (network namespaces)"
  command -v ip >/dev/null || mn_skip "ip (iproute2) is not installed"
  command -v unshare >/dev/null || mn_skip "unshare (util-linux) is not installed"
  local probe=${MN_PREFIX}probe
  if ! ip netns add "$probe" 2>/dev/null; then mn_skip_environment "cannot create network namespaces"; fi
  local ok=1
  ip netns exec "$probe" unshare --uts true 2>/dev/null || ok=0
  ip netns exec "$probe" ip link add "${MN_BRIDGE}p" type bridge 2>/dev/null || ok=0
  ip netns delete "$probe"
  [ "$ok" = 1 ] || mn_skip_environment "cannot enter a network and UTS namespace or create a bridge in it"
  mn_reap_stale
}

# Namespaces and /etc/netns entries of earlier runs whose shell is gone (killed with SIGKILL, e.g.
# by a ctest timeout, so that their teardown never ran): their processes are killed and they are
# deleted. Only names of this harness's pattern (exmnPID...) with no live PID are touched.
mn_reap_stale() {
  local ns pid
  for ns in $(ip netns list 2>/dev/null | awk '{print $1}' | grep -E '^exmn[0-9]+(h[0-9]+|sw|probe)$'); do
    pid=${ns#exmn}
    pid=${pid%%[!0-9]*}
    kill -0 "$pid" 2>/dev/null && continue
    echo "removing $ns, left by process $pid that is gone"
    # shellcheck disable=SC2046  # a list of process ids
    kill -9 $(ip netns pids "$ns" 2>/dev/null) 2>/dev/null || true
    ip netns delete "$ns" 2>/dev/null || true
    rm -rf "/etc/netns/$ns"
  done
  for ns in /etc/netns/exmn*; do
    [ -e "$ns" ] || continue
    pid=${ns#/etc/netns/exmn}
    pid=${pid%%[!0-9]*}
    kill -0 "$pid" 2>/dev/null || rm -rf "$ns"
  done
  rmdir /etc/netns 2>/dev/null || true  # only when empty
  return 0
}

# mn_setup N DIR: hosts mn1..mnN on one bridge; DIR (created) holds the agent script.
mn_setup() {
  local n=$1 i ns sw=${MN_PREFIX}sw
  MN_DIR=$2
  mkdir -p "$MN_DIR"
  [ -d /etc/netns ] || MN_MADE_ETC_NETNS=1
  # The teardown may run while a command's output is redirected (a signal during `CMD > log`):
  # it reports on the caller's stdout and stderr as they were here.
  exec {MN_STDOUT}>&1 {MN_STDERR}>&2
  trap mn_teardown EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM
  ip netns add "$sw"
  ip netns exec "$sw" ip link add "$MN_BRIDGE" type bridge
  ip netns exec "$sw" ip link set "$MN_BRIDGE" up
  ip netns exec "$sw" ip link set lo up
  local hosts=""
  for ((i = 1; i <= n; i++)); do hosts+="$MN_SUBNET.$i mn$i"$'\n'; done
  for ((i = 1; i <= n; i++)); do
    ns=$(mn_ns "mn$i")
    MN_HOSTS+=("mn$i")
    ip netns add "$ns"
    mkdir -p "/etc/netns/$ns"
    printf '127.0.0.1 localhost\n%s' "$hosts" > "/etc/netns/$ns/hosts"
    # Both ends are made in the switch namespace, then one moves to the host as mnet0.
    ip netns exec "$sw" ip link add "exv$$h$i" type veth peer name "exp$$h$i"
    ip netns exec "$sw" ip link set "exp$$h$i" netns "$ns"
    ip netns exec "$sw" ip link set "exv$$h$i" master "$MN_BRIDGE" up
    ip netns exec "$ns" ip link set "exp$$h$i" name mnet0
    ip netns exec "$ns" ip addr add "$MN_SUBNET.$i/24" dev mnet0
    ip netns exec "$ns" ip link set mnet0 up
    ip netns exec "$ns" ip link set lo up
    # TCP gives up on a silent peer after ~13 s of retransmissions instead of ~15 min (the default
    # 15 retries), so that mpirun's connection to a host that stopped answering fails in bounded time.
    ip netns exec "$ns" sysctl -qw net.ipv4.tcp_retries2=5
  done
  # The agent: OpenMPI calls it like ssh (AGENT HOST WORDS...), the words forming one command line.
  # Like ssh with ServerAlive probes, it gives up (exit 255) when HOST stops answering over the
  # simulated network for MN_ALIVE_S seconds (mpirun then declares HOST's daemon lost); a probe is
  # a TCP connection to port 1 of HOST, which a live host refuses at once.
  MN_AGENT=$MN_DIR/agent.sh
  cat > "$MN_AGENT" <<EOF
#!/bin/bash
# rsh agent for the simulated hosts of tests/multinode/hosts.sh (prefix $MN_PREFIX)
host=\$1
shift
case "\$host" in
  mn[0-9]*) ;;
  *) echo "agent.sh: unknown host \$host" >&2; exit 255 ;;
esac
ip netns exec "${MN_PREFIX}h\${host#mn}" unshare --uts sh -c "hostname \$host && \$*" &
child=\$!
trap 'kill \$child 2>/dev/null; exit 255' TERM INT HUP
answered=\$SECONDS
while kill -0 \$child 2>/dev/null; do
  if timeout 1 bash -c "exec 3<>/dev/tcp/$MN_SUBNET.\${host#mn}/1" 2>&1 | grep -q refused; then answered=\$SECONDS; fi
  if [ \$((SECONDS - answered)) -ge ${MN_ALIVE_S:-20} ]; then
    echo "agent.sh: \$host has not answered for ${MN_ALIVE_S:-20} s; giving up on it like ssh" >&2
    exit 255
  fi
  sleep 1
done
wait \$child
EOF
  chmod +x "$MN_AGENT"
  # mpirun options that keep OpenMPI on the simulated network.
  # shellcheck disable=SC2034,SC2054  # used by the sourcing test; "tcp,vader,self" is one value
  # The runtime's keepalives find an idle connection to a silent host in 10 + 3 x 2 s (after the
  # watchdog of the fault test, at 10 s: its report comes first).
  MN_MPIRUN_ARGS=(--mca plm_rsh_agent "$MN_AGENT" --mca oob_tcp_if_include "$MN_NET"
                  --mca btl tcp,vader,self --mca btl_tcp_if_include "$MN_NET" --mca oob_tcp_keepalive_time 10
                  --mca oob_tcp_keepalive_intvl 2 --mca oob_tcp_keepalive_probes 3)
}

# mn_hostfile FILE SLOTS_mn1 SLOTS_mn2 ...: an OpenMPI host file over the first hosts.
mn_hostfile() {
  local file=$1 i=1
  shift
  : > "$file"
  for s in "$@"; do echo "mn$i slots=$s" >> "$file"; i=$((i + 1)); done
}

# mn_exec HOST CMD [ARGS...]: run CMD on HOST (its network namespace, and a UTS namespace named HOST).
mn_exec() {
  local host=$1
  shift
  # shellcheck disable=SC2016  # expanded by the inner sh
  ip netns exec "$(mn_ns "$host")" unshare --uts sh -c 'hostname "$0" && exec "$@"' "$host" "$@"
}

# mn_bytes HOST: bytes HOST has sent and received on the simulated network so far.
mn_bytes() {
  # shellcheck disable=SC2016  # expanded by the inner sh, in HOST's /sys
  ip netns exec "$(mn_ns "$1")" sh -c \
    'echo $(( $(cat /sys/class/net/mnet0/statistics/tx_bytes) + $(cat /sys/class/net/mnet0/statistics/rx_bytes) ))'
}

# mn_root_port: a port on the bridge for the root namespace (its end exp$$r, address $MN_SUBNET.254),
# so that a process there (Prometheus) reaches the hosts; it goes with the switch namespace.
mn_root_port() {
  ip link add "exp$$r" type veth peer name "exv$$r" netns "${MN_PREFIX}sw"
  ip netns exec "${MN_PREFIX}sw" ip link set "exv$$r" master "$MN_BRIDGE" up
  ip addr add "$MN_SUBNET.254/24" dev "exp$$r"
  ip link set "exp$$r" up
}

# mn_kill_host HOST: SIGKILL to every process of HOST (its daemon and ranks), as if it lost power.
mn_kill_host() {
  local pids
  pids=$(ip netns pids "$(mn_ns "$1")" | tr '\n' ' ')
  # shellcheck disable=SC2086  # a list of process ids
  [ -n "$pids" ] && kill -9 $pids
}

# mn_link HOST up|down: HOST's port on the bridge (in the switch namespace), as if its cable were pulled.
mn_link() {
  ip netns exec "${MN_PREFIX}sw" ip link set "exv$$h${1#mn}" "$2"
}

# Leftovers of this test: namespaces, links named after this shell's id, /etc/netns entries.
mn_leftovers() {
  ip netns list 2>/dev/null | grep "^$MN_PREFIX" | sed 's/^/namespace /'
  ip -o link 2>/dev/null | grep -E "(exbr|exv|exp)$$" | sed 's/^/link /'
  local f
  for f in /etc/netns/"$MN_PREFIX"*; do [ -e "$f" ] && echo "file $f"; done
  return 0
}

mn_teardown() {
  local rc=$? ns pids left
  trap - EXIT INT TERM
  set +e
  [ -n "${MN_STDOUT:-}" ] && exec 1>&"$MN_STDOUT" 2>&"$MN_STDERR"
  for ns in $(ip netns list 2>/dev/null | awk '{print $1}' | grep "^$MN_PREFIX"); do
    pids=$(ip netns pids "$ns" 2>/dev/null | tr '\n' ' ')
    # shellcheck disable=SC2086  # a list of process ids
    [ -n "$pids" ] && kill -9 $pids 2>/dev/null
    for _ in 1 2 3 4 5 6 7 8 9 10; do
      [ -z "$(ip netns pids "$ns" 2>/dev/null)" ] && break
      sleep 0.2
    done
    left=$(ip netns pids "$ns" 2>/dev/null | tr '\n' ' ')
    [ -n "$left" ] && { echo "FAIL: processes $left still run in $ns after kill -9"; rc=1; }
    ip netns delete "$ns"
  done
  ip link del "exp$$r" 2>/dev/null  # mn_root_port's end (it would also go with the switch, later)
  rm -rf /etc/netns/"$MN_PREFIX"*
  [ -n "${MN_MADE_ETC_NETNS:-}" ] && rmdir /etc/netns 2>/dev/null
  left=$(mn_leftovers)
  if [ -n "$left" ]; then
    echo "FAIL: the simulated hosts left:"
    echo "$left"
    rc=1
  else
    echo "teardown: no namespace, link, /etc/netns entry or process of this test is left"
  fi
  # The test's own clean-up (processes it started in the root namespace); it fails the test by
  # returning non-zero when something of its own is left.
  if type mn_on_exit >/dev/null 2>&1 && ! mn_on_exit; then rc=1; fi
  exit "$rc"
}
