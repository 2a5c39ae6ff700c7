#!/usr/bin/env python3
"""Helpers of tests/prometheus_scrape_test.sh (standard library only).

  ports N                      N port bases, each with base+1 also free on 127.0.0.1
  watch ...                    while a tool runs: check its hosts' file_sd target files (one per
                               host, a group per rank), scrape every rank through the target it
                               advertises, keep each rank's last dump; optionally record the
                               targets a Prometheus discovers from those files
  exposition ...               the metrics contract (monitoring/README.md) on the final dumps
  prometheus ...               every dashboard panel query and every alert query against the
                               Prometheus that scraped the run
"""
import argparse
import glob
import json
import math
import os
import re
import socket
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

# --- the contract: name -> type, per phase -------------------------------------------------
COMMON = {
    "excel_world_size": "gauge",
    "process_resident_memory_bytes": "gauge",
    "process_cpu_seconds_total": "counter",
    "process_start_time_seconds": "gauge",
}
CUDA_ONLY = {"excel_gpu_memory_used_bytes": "gauge"}
HIST = "histogram"
PHASES = {
    "train": {
        "excel_train_steps_total": "counter", "excel_train_samples_total": "counter",
        "excel_train_skipped_steps_total": "counter", "excel_data_read_bytes_total": "counter",
        "excel_bad_inputs_total": "counter",
        "excel_train_step_seconds": HIST, "excel_train_data_wait_seconds": HIST,
        "excel_train_forward_seconds": HIST, "excel_train_backward_seconds": HIST,
        "excel_train_allreduce_seconds": HIST, "excel_train_optimizer_seconds": HIST,
        "excel_train_checkpoint_seconds": HIST,
        "excel_train_loss": "gauge", "excel_train_learning_rate": "gauge", "excel_train_epoch": "gauge",
        "excel_train_iteration": "gauge", "excel_train_max_iterations": "gauge",
        "excel_train_last_step_timestamp_seconds": "gauge",
        "excel_train_seg_vs_pseudo_label_miou_ratio": "gauge",
    },
    "precompute": {
        "excel_precompute_rows_total": "counter", "excel_cache_written_bytes_total": "counter",
        "excel_precompute_rows_planned": "gauge", "excel_precompute_progress_ratio": "gauge",
        "excel_precompute_eta_seconds": "gauge", "excel_precompute_batch_seconds": HIST,
    },
    "eval": {
        "excel_eval_images_total": "counter", "excel_eval_images_planned": "gauge",
        "excel_eval_progress_ratio": "gauge", "excel_eval_eta_seconds": "gauge",
        "excel_eval_image_seconds": HIST,
    },
}
# Rank 0 only, one series per kind (train: after a validation; eval: at the end).
RANK0_MIOU = {"train": "excel_val_miou_ratio", "eval": "excel_eval_miou_ratio"}
MIOU_KINDS = {"pseudo_label", "segmentation"}
CONST_LABELS = ("job_id", "rank", "host", "phase")


def http_get(url, timeout=2.0):
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return r.read().decode()


# --- ports -----------------------------------------------------------------------------------
def free(port):
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", port))
        return True
    except OSError:
        return False
    finally:
        s.close()


def cmd_ports(a):
    taken, out = set(), []
    while len(out) < a.n:
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        p = s.getsockname()[1]
        s.close()
        if p + 1 < 65536 and not {p, p + 1} & taken and free(p + 1):
            taken |= {p, p + 1}
            out.append(p)
    print(" ".join(map(str, out)))


# --- watch -----------------------------------------------------------------------------------
def alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


RANK_LABEL = "__meta_excel_rank"  # hidden: seen by discovery, never stored with the series


def check_target_file(path, base, np_):
    """A host's target file: one group per rank, {"targets": ["HOST:PORT"], "labels": {RANK_LABEL: "R"}}.
    Returns ({rank: 'host:port'}, [errors]); ({}, []) when the file is gone."""
    try:
        with open(path) as f:
            doc = json.load(f)
    except FileNotFoundError:
        return {}, []
    except (OSError, ValueError) as e:
        return {}, [f"{path}: not JSON ({e})"]
    name = os.path.basename(path)
    if not (isinstance(doc, list) and doc and all(isinstance(g, dict) for g in doc)):
        return {}, [f"{name}: expected a non-empty list of target groups, got {doc!r}"]
    ranks, errors = {}, []
    for g in doc:
        targets, labels = g.get("targets"), g.get("labels", {})
        if not (isinstance(targets, list) and len(targets) == 1 and isinstance(targets[0], str)):
            errors.append(f"{name}: expected one target per group, got {targets!r}")
            continue
        host, _, port = targets[0].rpartition(":")
        if not host or not port.isdigit() or not base <= int(port) < base + np_:
            errors.append(f"{name}: target {targets[0]!r} is not HOST:PORT with PORT in [{base}, {base + np_})")
        if not isinstance(labels, dict) or set(labels) != {RANK_LABEL}:
            errors.append(f"{name}: labels {labels!r}, expected only {RANK_LABEL} (the samples carry the rest)")
            continue
        r = labels[RANK_LABEL]
        if not (isinstance(r, str) and r.isdigit() and int(r) < np_) or r in ranks or targets[0] in ranks.values():
            errors.append(f"{name}: rank {r!r} out of range or listed twice, or target {targets[0]} listed twice")
            continue
        ranks[r] = targets[0]
    return ranks, errors


def discovered_targets(url):
    """Prometheus' active targets of job excel: {instance: (target file, rank label, health)}."""
    out = {}
    for t in prom(url, "/api/v1/targets", state="active")["activeTargets"]:
        d = t.get("discoveredLabels", {})
        if t.get("labels", {}).get("job") == "excel":
            out[d.get("__address__", "?")] = (os.path.basename(d.get("__meta_filepath", "?")), d.get(RANK_LABEL, "?"),
                                              t.get("health"))
    return out


def cmd_watch(a):
    """Runs until --pid exits. Prints one JSON line: what it saw."""
    os.makedirs(a.out_dir, exist_ok=True)
    hosts = a.hosts.split(",") if a.hosts else [socket.gethostname()]
    names = {h: os.path.join(a.sd_dir, f"excel_{a.job}_{a.phase}_{h}.json") for h in hosts}
    ours = set(names.values()) | {n + s for n in names.values() for s in (".tmp", ".lock")}
    seen = {"files": {}, "sd_errors": [], "scrapes": [0] * a.np, "stray_files": [], "discovered": {}}
    targets = {}  # rank -> host:port, as advertised
    deadline = time.time() + a.timeout
    while alive(a.pid) and time.time() < deadline:
        for h, path in names.items():
            ranks, errors = check_target_file(path, a.base, a.np)
            seen["sd_errors"] += [e for e in errors if e not in seen["sd_errors"]]
            if ranks:
                f = seen["files"].setdefault(os.path.basename(path), {"host": h, "ranks": {}, "max_groups": 0})
                f["ranks"].update(ranks)
                f["max_groups"] = max(f["max_groups"], len(ranks))
                targets.update(ranks)
        for r, t in sorted(targets.items()):
            try:
                body = http_get(f"http://{t}/metrics", timeout=1.0)
            except (OSError, urllib.error.URLError):
                continue
            tmp = os.path.join(a.out_dir, f".rank{r}.tmp")
            with open(tmp, "w") as f:
                f.write(body)
            os.replace(tmp, os.path.join(a.out_dir, f"rank{r}.prom"))
            seen["scrapes"][int(r)] += 1
        if a.prometheus:
            try:
                for inst, (fname, rank, health) in discovered_targets(a.prometheus).items():
                    d = seen["discovered"].setdefault(inst, {"file": fname, "rank": rank, "up": False})
                    d["up"] = d["up"] or health == "up"
            except (OSError, RuntimeError, ValueError, urllib.error.URLError):
                pass
        for p in glob.glob(os.path.join(a.sd_dir, f"excel_{a.job}_{a.phase}_*")):
            if p not in ours and os.path.basename(p) not in seen["stray_files"]:
                seen["stray_files"].append(os.path.basename(p))
        time.sleep(0.25)
    print(json.dumps(seen))


# --- exposition ------------------------------------------------------------------------------
LINE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)(?:\s+\d+)?$')
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def parse_exposition(text):
    types, samples = {}, []
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, typ = line.split(None, 3)
            types[name] = typ.strip()
        elif line.strip() and not line.startswith("#"):
            m = LINE.match(line)
            if not m:
                raise ValueError(f"unparsable line: {line!r}")
            samples.append((m.group(1), dict(LABEL.findall(m.group(2) or "")), float(m.group(3))))
    return types, samples


def values(samples, name, **match):
    return [v for n, l, v in samples if n == name and all(l.get(k) == w for k, w in match.items())]


def cmd_exposition(a):
    errors = []
    err = errors.append
    want = dict(COMMON, **PHASES[a.phase])
    per_rank = []
    for r, path in enumerate(a.files):
        if not os.path.exists(path):
            err(f"rank {r}: no /metrics dump (the rank was never scraped)")
            per_rank.append([])
            continue
        types, samples = parse_exposition(open(path).read())
        per_rank.append(samples)
        for name, typ in sorted(want.items()):
            if name not in types:
                err(f"rank {r}: {name} missing")
            elif types[name] != typ:
                err(f"rank {r}: {name} has TYPE {types[name]}, want {typ}")
            elif typ == HIST and not all(values(samples, name + s) for s in ("_sum", "_count")):
                err(f"rank {r}: histogram {name} lacks _sum/_count")
        for name in sorted(set(types) - set(want) - set(CUDA_ONLY)):
            if name.startswith("excel_") and name != RANK0_MIOU.get(a.phase):
                other = [p for p, m in PHASES.items() if name in m]
                if other:
                    err(f"rank {r}: {name} belongs to phase {other[0]}, not {a.phase}")
        for n, l, _ in samples:
            if not (n.startswith("excel_") or n.startswith("process_")):
                continue
            want_l = {"job_id": a.job, "rank": str(r), "phase": a.phase}
            bad = {k: l.get(k) for k, w in want_l.items() if l.get(k) != w}
            if bad or not l.get("host"):
                err(f"rank {r}: {n}{l} has wrong constant labels (want {want_l} and a host)")
                break
        def one(name, **m):
            v = values(samples, name, **m)
            return v[0] if len(v) == 1 else None
        ws = one("excel_world_size")
        if ws != a.np:
            err(f"rank {r}: excel_world_size = {ws}, want {a.np}")
        start = one("process_start_time_seconds")
        if start is None or not a.t0 - 60 <= start <= a.t1:
            err(f"rank {r}: process_start_time_seconds = {start}, not within the run [{a.t0}, {a.t1}]")
        if not (one("process_resident_memory_bytes") or 0) > 1e6:
            err(f"rank {r}: process_resident_memory_bytes = {one('process_resident_memory_bytes')}")
        if not (one("process_cpu_seconds_total") or 0) > 0:
            err(f"rank {r}: process_cpu_seconds_total = {one('process_cpu_seconds_total')}")
        miou = RANK0_MIOU.get(a.phase)
        if miou and r == 0:
            kinds = {l.get("kind"): v for n, l, v in samples if n == miou}
            if set(kinds) != MIOU_KINDS or not all(0 <= v <= 1 for v in kinds.values()):
                err(f"rank 0: {miou} = {kinds}, want kinds {sorted(MIOU_KINDS)} with values in [0, 1]")
        globals()["check_" + a.phase](a, r, samples, one, err)
    if all(per_rank):
        globals()["check_" + a.phase + "_total"](a, per_rank, err)
    for e in errors:
        print("  " + e)
    sys.exit(1 if errors else 0)


def check_train(a, r, s, one, err):
    it, mx, steps = one("excel_train_iteration"), one("excel_train_max_iterations"), one("excel_train_steps_total")
    if not it == mx == steps == a.max_iters:
        err(f"rank {r}: iteration {it}, max_iterations {mx}, steps_total {steps}: want all {a.max_iters}")
    if one("excel_train_step_seconds_count") != steps:
        err(f"rank {r}: excel_train_step_seconds_count {one('excel_train_step_seconds_count')} != steps_total {steps}")
    for h in ("data_wait", "forward", "backward", "allreduce", "optimizer"):
        if not (one(f"excel_train_{h}_seconds_count") or 0) > 0:
            err(f"rank {r}: excel_train_{h}_seconds_count = {one(f'excel_train_{h}_seconds_count')}")
    if r == 0 and not (one("excel_train_checkpoint_seconds_count") or 0) >= 1:
        err("rank 0: excel_train_checkpoint_seconds_count < 1 although checkpoints were written")
    for name in ("excel_train_skipped_steps_total", "excel_bad_inputs_total"):
        if one(name) != 0:
            err(f"rank {r}: {name} = {one(name)} on a healthy run")
    terms = {l.get("term"): v for n, l, v in s if n == "excel_train_loss"}
    if set(terms) != {"seg", "diversity", "total"} or not all(math.isfinite(v) for v in terms.values()):
        err(f"rank {r}: excel_train_loss = {terms}, want finite seg, diversity and total")
    lr = one("excel_train_learning_rate")
    if lr is None or not 0 <= lr < 1:
        err(f"rank {r}: excel_train_learning_rate = {lr}")
    ts = one("excel_train_last_step_timestamp_seconds")
    if ts is None or not a.t0 <= ts <= a.t1:
        err(f"rank {r}: excel_train_last_step_timestamp_seconds = {ts}, not within the run [{a.t0}, {a.t1}]")
    if not (one("excel_train_epoch") or 0) >= 1:
        err(f"rank {r}: excel_train_epoch = {one('excel_train_epoch')} after several epochs")
    if not (one("excel_data_read_bytes_total") or 0) > 0:
        err(f"rank {r}: excel_data_read_bytes_total = {one('excel_data_read_bytes_total')}")
    agree = one("excel_train_seg_vs_pseudo_label_miou_ratio")
    if agree is None or not 0 <= agree <= 1:
        err(f"rank {r}: excel_train_seg_vs_pseudo_label_miou_ratio = {agree}")


def check_train_total(a, per_rank, err):
    total = sum(sum(values(s, "excel_train_samples_total")) for s in per_rank)
    if total != a.max_iters * a.global_batch:
        err(f"excel_train_samples_total summed over ranks = {total}, want {a.max_iters} x {a.global_batch}")


def check_precompute(a, r, s, one, err):
    done, planned = one("excel_precompute_rows_total"), one("excel_precompute_rows_planned")
    if done is None or done != planned or not done > 0:
        err(f"rank {r}: excel_precompute_rows_total {done} != rows_planned {planned} at the end")
    if one("excel_precompute_progress_ratio") != 1:
        err(f"rank {r}: excel_precompute_progress_ratio = {one('excel_precompute_progress_ratio')} at the end")
    eta = one("excel_precompute_eta_seconds")
    if eta is None or not 0 <= eta < 1:
        err(f"rank {r}: excel_precompute_eta_seconds = {eta} at the end")
    if not (one("excel_cache_written_bytes_total") or 0) > 0 or not (one("excel_precompute_batch_seconds_count") or 0) > 0:
        err(f"rank {r}: no cache bytes written or no batch timed")


def check_precompute_total(a, per_rank, err):
    total = sum(sum(values(s, "excel_precompute_rows_total")) for s in per_rank)
    if total != a.rows:
        err(f"excel_precompute_rows_total summed over ranks = {total}, want {a.rows}")


def check_eval(a, r, s, one, err):
    done, planned = one("excel_eval_images_total"), one("excel_eval_images_planned")
    if done is None or done != planned or not done > 0:
        err(f"rank {r}: excel_eval_images_total {done} != images_planned {planned} at the end")
    if one("excel_eval_progress_ratio") != 1:
        err(f"rank {r}: excel_eval_progress_ratio = {one('excel_eval_progress_ratio')} at the end")
    eta = one("excel_eval_eta_seconds")
    if eta is None or not 0 <= eta < 1:
        err(f"rank {r}: excel_eval_eta_seconds = {eta} at the end")
    if one("excel_eval_image_seconds_count") != done:
        err(f"rank {r}: excel_eval_image_seconds_count {one('excel_eval_image_seconds_count')} != images_total {done}")


def check_eval_total(a, per_rank, err):
    total = sum(sum(values(s, "excel_eval_images_total")) for s in per_rank)
    if total != a.images:
        err(f"excel_eval_images_total summed over ranks = {total}, want {a.images}")


# --- prometheus ------------------------------------------------------------------------------
def prom(url, path, **params):
    q = urllib.parse.urlencode(params)
    try:
        body = http_get(f"{url}{path}?{q}", timeout=10)
    except urllib.error.HTTPError as e:
        body = e.read().decode()
    doc = json.loads(body)
    if doc.get("status") != "success":
        raise RuntimeError(doc.get("error", body))
    return doc["data"]


def dashboard_exprs(path):
    out = []
    def walk(panels):
        for p in panels:
            walk(p.get("panels", []))
            for t in p.get("targets", []):
                out.append((p.get("title", "?"), t.get("expr", "")))
    walk(json.load(open(path))["panels"])
    return out


# `<query> <comparison> <threshold>`; the query is what must return series.
ALERT_FORM = re.compile(r"^(.*\S)\s*(==|!=|>=|<=|>|<)\s*(?:bool\s+)?([-+]?(?:\d+(?:\.\d*)?(?:e[-+]?\d+)?|Inf|NaN))$",
                        re.S | re.I)


def count_series(url, expr, t0, t1):
    """Series with at least one finite or NaN value over [t0, t1]."""
    data = prom(url, "/api/v1/query_range", query=expr, start=t0, end=t1, step=1)
    return sum(1 for s in data["result"] if any(v[1] not in ("+Inf", "-Inf") for v in s["values"]))


def cmd_prometheus(a):
    subst = {"$__rate_interval": a.rate_interval, "${__rate_interval}": a.rate_interval,
             "$__interval": "5s", "${__interval}": "5s", "$__range": "5m", "${__range}": "5m",
             "${job_id}": a.job, "$job_id": a.job, "${rank}": ".*", "$rank": ".*"}
    rows, empty = [], []
    for title, expr in dashboard_exprs(a.dashboard):
        q = expr
        for k in sorted(subst, key=len, reverse=True):
            q = q.replace(k, subst[k])
        rows.append((f"panel '{title}'", q))
    rules = [r for g in prom(a.url, "/api/v1/rules")["groups"] for r in g["rules"] if r["type"] == "alerting"]
    if len(rules) < a.min_alerts:
        empty.append(f"Prometheus loaded {len(rules)} alerting rules, want >= {a.min_alerts}")
    healthy_fired = []
    for r in rules:
        m = ALERT_FORM.match(r["query"].strip())
        if not m:
            empty.append(f"alert {r['name']}: expression is not `<query> <comparison> <threshold>`: {r['query']}")
            continue
        rows.append((f"alert {r['name']}", m.group(1)))
        # The whole expression must not hold while the healthy run lingers.
        res = prom(a.url, "/api/v1/query", query=r["query"], time=a.t_healthy)["result"]
        if res:
            healthy_fired.append(f"alert {r['name']} holds on a healthy run at {a.t_healthy}: {res}")
    allow = set(a.allow or [])
    print(f"{'series':>6}  query")
    for where, q in rows:
        if "$" in q:
            empty.append(f"{where}: unsubstituted variable in {q}")
            continue
        try:
            n = count_series(a.url, q, a.t0, a.t1)
        except RuntimeError as e:
            empty.append(f"{where}: error {e}: {q}")
            print(f"{'ERROR':>6}  {where}: {q}")
            continue
        mark = " (CUDA only, allowed empty)" if n == 0 and any(x in q for x in allow) else ""
        print(f"{n:>6}  {where}: {q}{mark}")
        if n == 0 and not mark:
            empty.append(f"{where}: no series: {q}")
    # Both ranks of every phase were scraped through file_sd, and pushed at exit.
    for spec in a.phase:
        ph, base = spec.split(":")
        base = int(base)
        got = prom(a.url, "/api/v1/query_range", start=a.t0, end=a.t1, step=1,
                   query=f'count by (rank) (excel_world_size{{job="excel", job_id="{a.job}", phase="{ph}"}})')["result"]
        ranks = sorted(s["metric"].get("rank", "?") for s in got)
        if ranks != [str(i) for i in range(a.np)]:
            empty.append(f"phase {ph}: Prometheus scraped ranks {ranks} through file_sd, want 0..{a.np - 1}")
        # rate() over a phase needs at least two successful scrapes of each of its ranks.
        ups = prom(a.url, "/api/v1/query", time=a.t_end,
                   query=f'sum by (instance) (sum_over_time(up{{job="excel"}}[{int(a.t_end - a.t0) + 60}s]))')["result"]
        scrapes = {int(s["metric"]["instance"].rpartition(":")[2]): int(float(s["value"][1])) for s in ups}
        per_rank = [scrapes.get(p, 0) for p in range(base, base + a.np)]
        print(f"phase {ph}: successful scrapes per rank {per_rank}")
        if min(per_rank) < 2:
            empty.append(f"phase {ph}: successful scrapes per rank {per_rank}, want >= 2 each")
        if a.pushgateway:
            pushed = prom(a.url, "/api/v1/query", time=a.t_end,
                          query=f'count by (rank) (last_over_time(excel_world_size{{job="excel_pushed", job_id="{a.job}", phase="{ph}"}}[10m]))')["result"]
            pranks = sorted(s["metric"].get("rank", "?") for s in pushed)
            if pranks != [str(i) for i in range(a.np)]:
                empty.append(f"phase {ph}: Pushgateway values reached Prometheus for ranks {pranks}, want 0..{a.np - 1} "
                             "(grouping key must include job_id, phase and rank)")
    problems = empty + healthy_fired
    print(f"{len(rows)} queries, {len(problems)} problem(s)")
    for p in problems:
        print("  " + p)
    sys.exit(1 if problems else 0)


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("ports")
    p.add_argument("n", type=int)
    p = sub.add_parser("watch")
    for k in ("--sd-dir", "--job", "--phase", "--out-dir"):
        p.add_argument(k, required=True)
    for k in ("--pid", "--np", "--base"):
        p.add_argument(k, type=int, required=True)
    p.add_argument("--timeout", type=float, default=300)
    p.add_argument("--hosts", default="", help="H1,H2,...: the hosts whose target files to read (default: this one)")
    p.add_argument("--prometheus", default="", help="URL: also record the targets Prometheus discovers")
    p = sub.add_parser("exposition")
    p.add_argument("--phase", required=True, choices=sorted(PHASES))
    p.add_argument("--job", required=True)
    p.add_argument("--np", type=int, required=True)
    p.add_argument("--t0", type=float, required=True)
    p.add_argument("--t1", type=float, required=True)
    for k in ("--max-iters", "--global-batch", "--rows", "--images"):
        p.add_argument(k, type=int, default=0)
    p.add_argument("files", nargs="+")
    p = sub.add_parser("prometheus")
    p.add_argument("--url", required=True)
    p.add_argument("--dashboard", required=True)
    p.add_argument("--job", required=True)
    p.add_argument("--np", type=int, required=True)
    for k in ("--t0", "--t1", "--t-healthy", "--t-end"):
        p.add_argument(k, type=float, required=True)
    p.add_argument("--rate-interval", default="30s")
    p.add_argument("--min-alerts", type=int, default=1)
    p.add_argument("--phase", action="append", default=[], help="PHASE:PORT_BASE")
    p.add_argument("--pushgateway", action="store_true")
    p.add_argument("--allow", action="append", help="metric name whose queries may be empty")
    a = ap.parse_args()
    {"ports": cmd_ports, "watch": cmd_watch, "exposition": cmd_exposition, "prometheus": cmd_prometheus}[a.cmd](a)


if __name__ == "__main__":
    main()
