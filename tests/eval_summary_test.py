#!/usr/bin/env python3
"""scripts/eval_summary.py on small generated table.json files: the four measures side by side
with the right numbers, NaN kept, a CRF pseudo-label column only when a run has one, the Markdown
file equal to what is printed, and a missing table named with exit status 2."""
import json
import os
import subprocess
import sys
import tempfile

ROOT = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..")
SCRIPT = os.path.join(ROOT, "scripts", "eval_summary.py")


def table(miou, pixel="nan"):
    return {"miou": miou, "pixel_accuracy": pixel, "mean_accuracy": miou + 1, "classes": [], "confusion_matrix": []}


def write(d, name, mode, tables):
    os.makedirs(os.path.join(d, name))
    doc = {"mode": mode, "dataset": "voc", "split": "val", "crf": True, "scales": [64], "images": 6,
           "scored_images": 6, "world_size": 2, "tables": tables}
    with open(os.path.join(d, name, "table.json"), "w") as f:
        json.dump(doc, f)
    return os.path.join(d, name)


def run(*args):
    return subprocess.run([sys.executable, SCRIPT, *args], capture_output=True, text=True)


with tempfile.TemporaryDirectory() as d:
    tf = write(d, "tf", "training_free", {"pseudo_label": table(11.5, 70.25)})
    ck = write(d, "ck", "checkpoint", {"pseudo_label": table(22.0), "pseudo_label_crf": table(23.0),
                                       "segmentation": table(33.125), "segmentation_crf": table(44.0)})
    out = os.path.join(d, "summary.md")
    r = run(f"--training_free={tf}", f"--checkpoint={ck}/table.json", f"--strips={d}/strips", f"--output={out}")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    head = next(l for l in lines if l.startswith("| |"))
    cols = [c.strip() for c in head.strip("|").split("|")][1:]
    assert cols == ["training-free PL (static CAM)", "dynamic-CAM PL (trained)", "dynamic-CAM PL + CRF",
                    "segmentation", "segmentation + CRF"], cols
    miou = next(l for l in lines if l.startswith("| mIoU"))
    assert [c.strip() for c in miou.strip("|").split("|")][1:] == ["11.50", "22.00", "23.00", "33.12", "44.00"], miou
    pixel = next(l for l in lines if l.startswith("| pixel accuracy"))
    assert "70.25" in pixel and "nan" in pixel, pixel
    assert f"{d}/strips" in r.stdout
    assert open(out).read() == r.stdout

    # A checkpoint run without the CRF: its CRF column is shown empty.
    ck2 = write(d, "ck2", "checkpoint", {"pseudo_label": table(1.0), "segmentation": table(2.0)})
    r = run(f"--training_free={tf}", f"--checkpoint={ck2}")
    assert r.returncode == 0, r.stderr
    miou = next(l for l in r.stdout.splitlines() if l.startswith("| mIoU"))
    assert miou.rstrip().endswith("| 2.00 | - |"), miou

    # A missing table is named.
    r = run(f"--training_free={d}/nope", f"--checkpoint={ck}")
    assert r.returncode == 2 and f"{d}/nope" in r.stderr and "--training_free" in r.stderr, r
print("PASS")
