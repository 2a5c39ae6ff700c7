#!/usr/bin/env python3
"""The table of scripts/gpu_node.d/30_benchmarks.sh, from the JSON lines its benchmarks printed.

  bench_summary.py BENCHMARKS.jsonl

One row per figure issue 13 asks for, with its target where the issue sets one (docs/gpu_node.md,
"Benchmarks"). Ratios are between runs of the same file, i.e. the same machine and run. A missing
benchmark leaves its rows as "-" (its SKIP or FAIL line is in the log).
"""
import json
import sys


def load(path):
    rows = []
    with open(path) as f:
        for line in f:
            line = line.strip()
            if line.startswith("{"):
                try:
                    rows.append(json.loads(line))
                except ValueError:
                    pass
    return rows


def fmt(v, spec=".1f"):
    return "-" if v is None else format(v, spec)


def main():
    rows = load(sys.argv[1])
    backbones = [r for r in rows if r.get("bench") == "backbone"]
    train = next((r for r in rows if r.get("bench") == "train_step"), None)
    cache = next((r for r in rows if r.get("bench") == "cache"), None)
    ref = next((r for r in rows if "iter0" in r and "iter24000" in r), None)
    skips = [r for r in rows if r.get("bench") == "skip"]
    sync = next((r for r in rows if r.get("bench") == "allreduce"), None)

    print("== Backbone precompute: ViT-B/16 surgery forward, every layer's output kept (target: >= 3000 images/s "
          "in fp16 or bf16)")
    print(f"{'precision':<12}{'batch':>6}{'images/s':>10}{'TFLOP/s':>9}{'card TFLOP/s':>14}{'of card':>9}"
          f"{'MLP GEMM TFLOP/s':>18}")
    for r in backbones:
        best = max(r["runs"], key=lambda x: x["images_per_s"])
        name = r["precision"] + (" TF32" if r.get("tf32") else "")
        print(f"{name:<12}{best['batch']:>6}{best['images_per_s']:>10.1f}{best['achieved_gflops'] / 1e3:>9.2f}"
              f"{r.get('card_tflops', 0):>14.2f}{best.get('card_ratio', 0):>9.2f}{best['gemm_gflops'] / 1e3:>18.2f}")
    if backbones:
        half = [max(x["images_per_s"] for x in r["runs"]) for r in backbones if r["precision"] in ("fp16", "bf16")]
        print(f"fp16/bf16 best: {fmt(max(half) if half else None)} images/s "
              f"({'meets' if half and max(half) >= 3000 else 'below'} 3000); card rate: a "
              f"{backbones[0].get('card_gemm_n', '?')}^3 GEMM in the same precision, same run")

    print("\n== Training step (trainer, synthetic data; reference timed on the same device in this run; targets: "
          "online >= 2x, cached >= 5x faster)")
    print(f"{'mode':<22}{'s/step':>9}{'images/s':>10}{'data wait':>11}{'grad sync':>11}{'device MB':>11}"
          f"{'reference s':>13}{'speedup':>9}  {'target'}")
    modes = [("online", "iter0", 2), ("online_after_switch", "iter24000", 2), ("cached", "iter0", 5),
             ("cached_after_switch", "iter24000", 5)]
    for key, ref_key, target in modes:
        r = (cache or {}).get(key)
        ref_s = ref[ref_key]["step"] if ref else None
        if r is None:
            print(f"{key:<22}{'-':>9}")
            continue
        speed = ref_s / r["step_s"] if ref_s else None
        verdict = "-" if speed is None else f">= {target}x {'met' if speed >= target else 'MISSED'}"
        print(f"{key:<22}{r['step_s']:>9.4f}{r['images_per_s']:>10.1f}{100 * r['data_wait_share']:>10.1f}%"
              f"{100 * r['grad_sync_share']:>10.1f}%{r['device_mb']:>11.0f}{fmt(ref_s, '.4f'):>13}"
              f"{fmt(speed, '.2f'):>9}  {verdict}")
    if ref and cache and (ref.get("batch"), ref.get("crop")) != (cache.get("batch"), cache.get("size")):
        print(f"NOT COMPARABLE: the reference ran batch {ref.get('batch')}, {ref.get('crop')} px; ours batch "
              f"{cache.get('batch')}, {cache.get('size')} px")
    if ref:
        print(f"reference: {ref.get('device')}, torch {ref.get('torch')}, batch {ref.get('batch')}, "
              f"{ref.get('crop')} px, peak memory {ref.get('peak_memory_gb', '-')} GB")
    if cache:
        print(f"device: {cache.get('device')}, backbone {cache.get('precision')}, batch {cache.get('batch')}, "
              f"{cache.get('size')} px; cache precompute {cache['precompute_crops_per_s_per_rank']:.1f} crops/s")

    if train:
        print(f"\n== Step split (excel_bench_train, batch {train['batch']}, {train['size']} px, {train['precision']})")
        print(f"{'mode':<20}{'ms/step':>9}{'images/s':>10}{'backbone':>10}{'dyn CAM':>9}{'pseudo':>8}{'heads':>8}"
              f"{'optim':>7}{'device MB':>11}")
        for key in ("static", "dynamic_linear", "dynamic_full_pass"):
            m = train.get(key)
            if m:
                print(f"{key:<20}{m['ms_per_step']:>9.1f}{m['images_per_s']:>10.1f}{m['backbone_ms']:>10.1f}"
                      f"{m['dynamic_cam_ms']:>9.1f}{m['pseudo_label_ms']:>8.1f}{m['heads_fwd_bwd_ms']:>8.1f}"
                      f"{m['optimizer_ms']:>7.1f}{m['device_mb']:>11.0f}")
        lb = train.get("largest_batch")
        if lb:
            print(f"largest batch that fits (after-switch step): {lb['batch']}, {lb['images_per_s']:.1f} images/s, "
                  f"device {lb['device_mb']:.0f} MB (search stopped by {lb['stopped_by']})")
    if sync:
        print(f"\n== Gradient sync (excel_bench_allreduce, {sync['ranks']} rank(s), {sync.get('device', 'cpu')} over "
              f"{sync.get('backend', 'mpi')}, {sync['bytes'] / 1e6:.1f} MB in {sync['buckets']} buckets)")
        print(f"one all-reduce {sync['raw_allreduce_ms']:.2f} ms, buckets {sync['bucketed_allreduce_ms']:.2f} ms; "
              f"heads step {sync['step_without_sync_ms']:.1f} ms without sync, {sync['step_with_sync_ms']:.1f} ms with "
              f"bucketed sync ({sync['exposed_sync_ms']:.2f} ms left after backward)")
    for s in skips:
        print(f"SKIP {s['name']}: {s['why']}")


if __name__ == "__main__":
    main()
