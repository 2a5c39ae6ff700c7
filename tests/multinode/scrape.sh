# shellcheck shell=bash
# A real Prometheus in the root namespace scraping ranks on the simulated hosts (sourced after
# hosts.sh, jobs.sh and test_lib.sh, once mn_setup has run; uses $work).
#   mn_prometheus_start            mn_root_port, then Prometheus on 127.0.0.1 with the shipped
#                                  prometheus.yml reading $work/sd (1 s intervals); its pid in $MN_PROM_PID
#   mn_watch_targets JOB_ID PHASE BASE  while the job $MN_JOB runs (mn_job_bg) and until it exits:
#                                  each host's one target file lists that host's ranks (HOST's
#                                  address, BASE + local rank), Prometheus discovers every rank
#                                  from its host's file and scrapes it, nothing is left after exit
#   mn_scrape_report JOB_ID N      after the job: from Prometheus' own data, each of the N targets
#                                  answered (up 1), with its sample count and its host/rank labels;
#                                  fails unless every target's host label is the host of its address
# shellcheck disable=SC2154  # $work is the sourcing test's
mn_prometheus_start() {
  mn_root_port
  MN_PROM_PORT=$("$MN_PY" "$SRC_DIR/tests/monitoring_check.py" ports 1)
  mkdir -p "$work/prom" "$work/sd"
  cp "$SRC_DIR/monitoring/prometheus/prometheus.yml" "$SRC_DIR/monitoring/prometheus/alerts.yml" "$work/prom/"
  sed -i -e "s#/var/lib/excel/targets/#$work/sd/#" -e 's/scrape_interval: 15s/scrape_interval: 1s/' \
    -e 's/evaluation_interval: 15s/evaluation_interval: 1s/' "$work/prom/prometheus.yml"
  grep -q "$work/sd/excel_\*.json" "$work/prom/prometheus.yml" || fail "prometheus.yml: no target file glob to rewrite"
  setsid timeout 280 prometheus --config.file="$work/prom/prometheus.yml" --storage.tsdb.path="$work/tsdb" \
    --web.listen-address="127.0.0.1:$MN_PROM_PORT" --log.level=warn > "$work/prometheus.log" 2>&1 &
  # shellcheck disable=SC2034  # read by the sourcing test's exit hook
  MN_PROM_PID=$!
  for _ in $(seq 1 150); do
    "$MN_PY" -c "import urllib.request as u; u.urlopen('http://127.0.0.1:$MN_PROM_PORT/-/ready', timeout=1)" 2>/dev/null \
      && return 0
    sleep 0.2
  done
  cat "$work/prometheus.log"
  fail "Prometheus did not start"
}

mn_scrape_report() {
  "$MN_PY" - "http://127.0.0.1:$MN_PROM_PORT" "$1" "$2" "$MN_SUBNET" <<'PYEOF'
import json, sys, urllib.parse, urllib.request
url, job, n, subnet = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
def query(q):
    with urllib.request.urlopen(f"{url}/api/v1/query?" + urllib.parse.urlencode({"query": q}), timeout=10) as r:
        return {s["metric"].get("instance", ""): (s["metric"], float(s["value"][1])) for s in json.load(r)["data"]["result"]}
# Over the whole test: the targets stay in Prometheus' storage after the job removed its files.
up = query('max_over_time(up{job="excel"}[10m])')
scrapes = query('sum_over_time(up{job="excel"}[10m])')  # successful scrapes
samples = query('max_over_time(scrape_samples_scraped{job="excel"}[10m])')
labels = query(f'last_over_time(excel_world_size{{job="excel",job_id="{job}"}}[10m])')
bad, hosts = [], {}
for inst in sorted(up):
    addr = inst.rsplit(":", 1)[0]
    want = "mn" + addr.rsplit(".", 1)[1] if addr.startswith(subnet + ".") else "?"
    m = labels.get(inst, ({}, 0))[0]
    host, rank = m.get("host", "-"), m.get("rank", "-")
    hosts.setdefault(host, []).append(rank)
    print(f"[figure] scrape of {inst} (host {want}): up {up[inst][1]:.0f}, {scrapes.get(inst, ({}, 0))[1]:.0f} "
          f"successful scrapes, {samples.get(inst, ({}, 0))[1]:.0f} samples per scrape, labels host={host} rank={rank}")
    if up[inst][1] != 1 or host != want:
        bad.append(f"{inst}: up {up[inst][1]}, host label {host}, expected {want}")
if len(up) != n:
    bad.append(f"{len(up)} targets scraped, expected {n}: {sorted(up)}")
print("hosts and the ranks Prometheus saw there: " + "; ".join(f"{h}: ranks {sorted(r)}" for h, r in sorted(hosts.items())))
for b in bad:
    print("FAIL:", b)
sys.exit(1 if bad else 0)
PYEOF
}

mn_watch_targets() {
  local job=$1 phase=$2 base=$3 seen rc=0
  seen=$("$MN_PY" "$SRC_DIR/tests/monitoring_check.py" watch --pid "$MN_JOB" --sd-dir "$work/sd" --job "$job" \
    --phase "$phase" --np 4 --base "$base" --hosts mn1,mn2 --prometheus "http://127.0.0.1:$MN_PROM_PORT" \
    --out-dir "$work/dump-$phase" --timeout 280)
  wait "$MN_JOB" || rc=$?
  [ "$rc" = 0 ] || { tail -40 "$work/$phase-2x2.log"; fail "$phase on 2x2 (exit $rc)"; }
  "$MN_PY" - "$seen" "$job" "$phase" "$base" "$MN_SUBNET" "$work/sd" <<'PYEOF'
import json, os, sys
d, job, phase, base, subnet, sd = json.loads(sys.argv[1]), *sys.argv[2:4], int(sys.argv[4]), *sys.argv[5:7]
bad = d["sd_errors"] + [f"stray file {f}" for f in d["stray_files"]]
# mnI's file lists mnI's two ranks, on mnI's address, ports BASE + local rank.
want = {f"excel_{job}_{phase}_mn{i}.json": {str(r): f"{subnet}.{i}:{base + r % 2}" for r in (2 * i - 2, 2 * i - 1)}
        for i in (1, 2)}
for name, ranks in sorted(want.items()):
    f = d["files"].get(name)
    if not f:
        bad.append(f"{name} never seen")
        continue
    print(f"[figure] target file {name}: ranks {f['ranks']} ({f['max_groups']} groups at most at once)")
    if f["ranks"] != ranks or f["max_groups"] != 2:
        bad.append(f"{name}: ranks {f['ranks']} ({f['max_groups']} at once), expected {ranks} together")
if set(d["files"]) != set(want):
    bad.append(f"target files {sorted(d['files'])}, expected {sorted(want)}")
# Prometheus found each rank in its host's file (discovered labels __meta_filepath, __meta_excel_rank).
disc = d["discovered"]
per_file = {}
for inst, t in sorted(disc.items()):
    per_file.setdefault(t["file"], []).append(t["rank"])
    print(f"[figure] Prometheus discovered {inst} in {t['file']} (rank {t['rank']}), up {int(t['up'])}")
    if not t["up"] or want.get(t["file"], {}).get(t["rank"]) != inst:
        bad.append(f"discovered {inst} in {t['file']} as rank {t['rank']}, up {t['up']}")
if {f: sorted(r) for f, r in per_file.items()} != {f: sorted(r) for f, r in want.items()}:
    bad.append(f"Prometheus discovered ranks per file {per_file}, expected {dict((f, sorted(r)) for f, r in want.items())}")
left = sorted(os.listdir(sd))
if left:
    bad.append(f"left in the target folder after the job: {left}")
for b in bad:
    print("FAIL:", b)
sys.exit(1 if bad else 0)
PYEOF
}
