#!/usr/bin/env python3
"""Side-by-side summary of excel_eval runs, from their table.json files.

  scripts/eval_summary.py --training_free=DIR --checkpoint=DIR [--strips=DIR] [--output=summary.md]

DIR is an excel_eval --output_dir (or its table.json). The columns are ExCEL's training-free
pseudo-labels (static CAMs), the dynamic-CAM pseudo-labels of the trained checkpoint, and the
checkpoint's segmentation without and with the dense CRF (a CRF column of pseudo-labels is added
when a run has one); the rows are mIoU (classes with ground truth), pixel and mean accuracy. A
measure a run did not make is shown as "-". The table is printed and, with --output, written as
Markdown. Exit status 2 names a missing or unreadable table.
"""
import argparse
import json
import os
import sys

# (column title, which run, table name in table.json)
COLUMNS = [
    ("training-free PL (static CAM)", "training_free", "pseudo_label"),
    ("training-free PL + CRF", "training_free", "pseudo_label_crf"),
    ("dynamic-CAM PL (trained)", "checkpoint", "pseudo_label"),
    ("dynamic-CAM PL + CRF", "checkpoint", "pseudo_label_crf"),
    ("segmentation", "checkpoint", "segmentation"),
    ("segmentation + CRF", "checkpoint", "segmentation_crf"),
]
REQUIRED = {"pseudo_label", "segmentation", "segmentation_crf"}  # shown even when absent
ROWS = [("mIoU", "miou"), ("pixel accuracy", "pixel_accuracy"), ("mean accuracy", "mean_accuracy")]


def load(path, flag):
    if os.path.isdir(path):
        path = os.path.join(path, "table.json")
    try:
        with open(path) as f:
            doc = json.load(f)
        if not isinstance(doc.get("tables"), dict):
            raise ValueError("no 'tables' object")
        return path, doc
    except (OSError, ValueError) as e:
        print(f"eval_summary.py: --{flag}: {path}: {e}", file=sys.stderr)
        sys.exit(2)


def cell(v):
    return f"{v:.2f}" if isinstance(v, (int, float)) else str(v)  # NaN/inf are stored as strings


def summary(runs, strips):
    cols = [(t, r, n) for t, r, n in COLUMNS if n in REQUIRED or n in runs[r][1]["tables"]]
    first = runs["training_free"][1]
    lines = [
        f"ExCEL evaluation summary: {first.get('dataset', '?')} {first.get('split', '?')} split, "
        f"{first.get('scored_images', '?')} scored images (training-free) / "
        f"{runs['checkpoint'][1].get('scored_images', '?')} (checkpoint)",
        "",
        "| | " + " | ".join(t for t, _, _ in cols) + " |",
        "|---|" + "---:|" * len(cols),
    ]
    for title, key in ROWS:
        vals = []
        for _, r, n in cols:
            t = runs[r][1]["tables"].get(n)
            vals.append(cell(t[key]) if t else "-")
        lines.append(f"| {title} | " + " | ".join(vals) + " |")
    lines += ["", "PL: pseudo-labels (PAR without the CRF). Tables: " +
              ", ".join(f"{r} {runs[r][0]}" for r in ("training_free", "checkpoint"))]
    if strips:
        lines.append(f"Picture strips (image | CAM | pseudo-label | segmentation | ground truth): {strips}")
    return "\n".join(lines) + "\n"


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--training_free", required=True, help="excel_eval --eval_mode=training_free output folder")
    p.add_argument("--checkpoint", required=True, help="excel_eval --eval_mode=checkpoint output folder")
    p.add_argument("--strips", default="", help="where the picture strips are (named in the summary)")
    p.add_argument("--output", default="", help="also write the summary here (Markdown)")
    a = p.parse_args()
    runs = {"training_free": load(a.training_free, "training_free"), "checkpoint": load(a.checkpoint, "checkpoint")}
    text = summary(runs, a.strips)
    sys.stdout.write(text)
    if a.output:
        with open(a.output, "w") as f:
            f.write(text)


if __name__ == "__main__":
    main()
