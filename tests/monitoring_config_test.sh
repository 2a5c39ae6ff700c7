#!/usr/bin/env bash
# Offline checks of monitoring/: promtool on the Prometheus configuration and the alert rules,
# the alert unit tests (alerts_test.yml), the Grafana dashboard's and provisioning files' shape,
# and that every metric they use is in the README's metric table (and every table entry is used).
# The queries themselves run against real data in tests/prometheus_scrape_test.sh.
set -euo pipefail
SRC=$(cd "$(dirname "$0")/.." && pwd)
M=$SRC/monitoring
skip() {
  [ "${CI:-}" = true ] && { echo "FAIL: CI=true but $* is not installed"; exit 1; }
  echo "SKIP: $* is not installed (scripts/install_deps.sh)"; exit 77
}
for t in promtool python3; do command -v "$t" >/dev/null || skip "$t"; done
python3 -c "import yaml" 2>/dev/null || skip python3-yaml
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

echo "== promtool check config / rules / test rules"
# The shipped target directory need not exist here: promtool only warns about it.
promtool check config "$M/prometheus/prometheus.yml"
promtool check rules "$M/prometheus/alerts.yml"
promtool test rules "$M/prometheus/alerts_test.yml"
# The 1 s intervals the scrape test rewrites to are valid too.
cp "$M/prometheus/prometheus.yml" "$M/prometheus/alerts.yml" "$work/"
sed -i -e "s#/var/lib/excel/targets/#$work/#" -e 's/_interval: 15s/_interval: 1s/' "$work/prometheus.yml"
promtool check config "$work/prometheus.yml" >/dev/null

echo "== dashboard, provisioning, alert form, metric table"
python3 - "$M" <<'EOF'
import json, os, re, sys, yaml
M = sys.argv[1]
errors = []
err = errors.append

# Dashboard: valid JSON (python3 -m json.tool equivalent), templating, panels, targets.
dash_path = os.path.join(M, "grafana/dashboards/excel_training.json")
dash = json.load(open(dash_path))
if dash.get("schemaVersion", 0) < 36:
    err(f"schemaVersion {dash.get('schemaVersion')} < 36")
tv = {v["name"]: v for v in dash.get("templating", {}).get("list", [])}
if tv.get("datasource", {}).get("type") != "datasource" or tv["datasource"].get("query") != "prometheus":
    err("templating: no Prometheus datasource variable 'datasource'")
for name, src in (("job_id", "label_values(excel_world_size, job_id)"), ("rank", "label_values(excel_world_size{")):
    v = tv.get(name)
    q = v and (v.get("query", {}).get("query") if isinstance(v.get("query"), dict) else v.get("query"))
    if not v or v.get("type") != "query" or not (q or "").startswith(src):
        err(f"templating: variable {name} must be a label_values query starting with {src}")
    elif v.get("includeAll") and v.get("allValue") != ".*":
        err(f"templating: {name} has an All option without allValue '.*'")
    for text in (q or "", v.get("definition", "") if v else ""):
        if re.search(r'(=|!=)\s*"\$', text):
            err(f"templating: {name}: {text} must match template variables with =~")
exprs, ids, boxes = [], set(), []
def walk(panels):
    for p in panels:
        if p.get("id") in ids:
            err(f"panel id {p.get('id')} repeated")
        ids.add(p.get("id"))
        g = p.get("gridPos", {})
        if not all(k in g for k in "hwxy"):
            err(f"panel '{p.get('title')}' has no complete gridPos")
        elif p.get("type") != "row":
            boxes.append((p.get("title"), g["x"], g["y"], g["w"], g["h"]))
        walk(p.get("panels", []))
        if p.get("type") == "row":
            continue
        if p.get("datasource", {}).get("uid") != "${datasource}":
            err(f"panel '{p.get('title')}' does not use the ${{datasource}} variable")
        if not p.get("targets"):
            err(f"panel '{p.get('title')}' has no query")
        for t in p.get("targets", []):
            e = t.get("expr", "")
            if not e.strip():
                err(f"panel '{p.get('title')}' target {t.get('refId')} has no expr")
            # Multi-value / All template variables need regex matchers.
            for m in re.finditer(r'(\w+)\s*(=|!=)\s*"\$\{?(\w+)', e):
                err(f"panel '{p.get('title')}': {m.group(0)} must use =~ (template variables are regexes)")
            for var in re.findall(r"\$\{?(\w+)", e):
                if var not in ("job_id", "rank", "__rate_interval", "__interval", "__range"):
                    err(f"panel '{p.get('title')}': unknown variable ${var}")
            if re.search(r"\[\d+[smhd]\]", e):
                err(f"panel '{p.get('title')}': fixed range window in {e} (use $__rate_interval)")
            exprs.append(e)
walk(dash["panels"])
for i, a in enumerate(boxes):
    for b in boxes[i + 1:]:
        if a[1] < b[1] + b[3] and b[1] < a[1] + a[3] and a[2] < b[2] + b[4] and b[2] < a[2] + a[4]:
            err(f"panels '{a[0]}' and '{b[0]}' overlap")

# Provisioning.
ds = yaml.safe_load(open(os.path.join(M, "grafana/provisioning/datasources/prometheus.yml")))
if not any(d.get("type") == "prometheus" and d.get("url") for d in ds.get("datasources", [])):
    err("datasource provisioning: no prometheus datasource with a url")
pv = yaml.safe_load(open(os.path.join(M, "grafana/provisioning/dashboards/excel.yml")))
if not any(p.get("type") == "file" and p.get("options", {}).get("path") for p in pv.get("providers", [])):
    err("dashboard provisioning: no file provider with a path")

# Alerts: `<query> <comparison> <threshold>`, live scrape job only, severity and summary.
rules = [r for g in yaml.safe_load(open(os.path.join(M, "prometheus/alerts.yml")))["groups"] for r in g["rules"]]
form = re.compile(r"^(.*\S)\s*(==|!=|>=|<=|>|<)\s*(?:bool\s+)?([-+]?(?:\d+(?:\.\d*)?|Inf|NaN))$", re.S)
for r in rules:
    e = " ".join(r["expr"].split())
    if not form.match(e):
        err(f"alert {r.get('alert')}: not `<query> <comparison> <threshold>`: {e}")
    for sel in re.findall(r"\b(?:excel_\w+|up|process_\w+)(\{[^}]*\})?", e):
        if 'job="excel"' not in sel:
            err(f"alert {r.get('alert')}: every selector needs job=\"excel\" (not the Pushgateway copy): {e}")
            break
    if r.get("labels", {}).get("severity") not in ("warning", "critical"):
        err(f"alert {r.get('alert')}: severity must be warning or critical")
    if not r.get("annotations", {}).get("summary"):
        err(f"alert {r.get('alert')}: no summary")
    exprs.append(r["expr"])

# Every metric used is documented in the README table, and every documented metric is used.
readme = open(os.path.join(M, "README.md")).read()
documented = set(re.findall(r"^\|\s*`([a-z_:]+)`", readme, re.M))
used = set()
for e in exprs:
    for n in re.findall(r"\b((?:excel|process)_[a-z0-9_]+)", e):
        used.add(re.sub(r"_(bucket|sum|count)$", "", n) if re.search(r"_seconds_(bucket|sum|count)$", n) else n)
for n in sorted(used - documented):
    err(f"{n} is queried but not in the README metric table")
for n in sorted(documented - used):
    err(f"{n} is in the README metric table but on no panel and in no alert")
for e in errors:
    print("  " + e)
print(f"{len(exprs)} queries, {len(rules)} alerts, {len(documented)} documented metrics: "
      + ("FAIL" if errors else "ok"))
sys.exit(1 if errors else 0)
EOF
python3 -m json.tool "$M/grafana/dashboards/excel_training.json" >/dev/null

echo "== every panel query parses (as recording rules, through promtool check rules)"
python3 - "$M/grafana/dashboards/excel_training.json" >"$work/panel_rules.yml" <<'EOF'
import json, sys
subst = {"$__rate_interval": "1m", "$__interval": "15s", "$__range": "1h", "$job_id": ".*", "$rank": ".*"}
out = []
def walk(panels):
    for p in panels:
        walk(p.get("panels", []))
        for t in p.get("targets", []):
            e = t.get("expr", "")
            for k, v in subst.items():
                e = e.replace("${" + k[1:] + "}", v).replace(k, v)
            out.append({"record": f"panel_{p['id']}_{t.get('refId', 'A')}", "expr": e})
walk(json.load(open(sys.argv[1]))["panels"])
print(json.dumps({"groups": [{"name": "dashboard", "rules": out}]}))
EOF
promtool check rules "$work/panel_rules.yml" || { echo "FAIL: a panel query does not parse"; exit 1; }
echo "PASS"
