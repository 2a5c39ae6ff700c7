# shellcheck shell=bash
# A real Prometheus in the root namespace scraping ranks on the simulated hosts (sourced after
# hosts.sh, jobs.sh and test_lib.sh, once mn_setup has run; uses $work).
#   mn_prometheus_start            mn_root_port, then Prometheus on 127.0.0.1 with the shipped
#                                  prometheus.yml reading $work/sd (1 s intervals); its pid in $MN_PROM_PID
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
