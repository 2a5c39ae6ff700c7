#!/usr/bin/env bash
# excel_eval with real mpirun ranks: the table of 2 ranks equals the table of 1 rank (training-free
# and checkpoint modes, with and without CRF), the CRF run also scores without the CRF (the same
# tables as the run without it), masks are VOC-palette PNGs, overlays and picture strips are
# written, test-split layout, and bad input is refused with an error naming the file.
set -euo pipefail
BUILD=$1
# shellcheck source=tests/test_lib.sh
source "$(dirname "$0")/test_lib.sh"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
PY=/usr/bin/python3

make_tiny_data "$work" 14 120 200
M=(--data_root="$work/voc" --model_clip="$work/clip/clip.jit.pt" --model_bank="$work/bank.h5" --model_crop=64 --threads=1)
E=("$BUILD/src/excel_eval" "${M[@]}")

# A short training run gives a checkpoint.
timeout 300 mpirun -np 2 "$BUILD/src/excel_train" "${M[@]}" --data_train_split=train --data_val_split=val \
  --model_adapter_dim=32 --train_batch=2 --train_max_iters=12 --train_warmup_iters=2 --train_switch_iter=6 \
  --train_pred_target_iter=9 --train_lr=5e-4 --eval_every=100 --eval_limit=2 --ckpt_every=100 \
  --output_dir="$work/run" 2>/dev/null || fail "training"

same_tables() {  # TABLE_A TABLE_B WHAT: confusion matrices and image counts are identical
  "$PY" - "$1" "$2" "$3" <<'PYEOF'
import json, sys
a, b = (json.load(open(p)) for p in sys.argv[1:3])
assert a["images"] == b["images"] and a["scored_images"] == b["scored_images"], (a["images"], b["images"])
assert sorted(a["tables"]) == sorted(b["tables"]) and a["tables"], (list(a["tables"]), list(b["tables"]))
for name in a["tables"]:
    ca, cb = a["tables"][name]["confusion_matrix"], b["tables"][name]["confusion_matrix"]
    cells = sum(x != y for x, y in zip(ca, cb))
    print(f"[equivalence] eval 1 vs 2 ranks, {sys.argv[3]}, {name}: largest difference {cells} (bound 0) differing confusion cells")
    assert ca == cb, f"{name}: confusion matrices differ"
    assert sum(ca) > 0, f"{name}: empty"
    assert a["tables"][name]["miou"] == b["tables"][name]["miou"]
print("tables equal:", ", ".join(f"{n} mIoU {a['tables'][n]['miou']:.2f}" for n in sorted(a["tables"])))
PYEOF
}

for mode in training_free checkpoint; do
  for crf in false true; do
    for np in 1 2; do
      out="$work/$mode-$crf-$np"
      timeout 300 mpirun -np $np "${E[@]}" --data_split=val --eval_mode=$mode --eval_checkpoint="$work/run/checkpoint.h5" \
        --eval_crf=$crf --eval_scales=64,48,80 --eval_save_overlays=2 --eval_strips=3 --output_dir="$out" > "$out.log" 2>&1 \
        || { cat "$out.log"; fail "$mode crf=$crf np=$np"; }
    done
    same_tables "$work/$mode-$crf-1/table.json" "$work/$mode-$crf-2/table.json" "$mode crf=$crf" || fail "$mode crf=$crf: 1 rank != 2 ranks"
    grep -q "^mean" "$work/$mode-$crf-2.log" || fail "$mode: no table printed"
  done
done

# One pass with the CRF scores without it too: its plain tables are those of the run without the CRF.
"$PY" - "$work" <<'PYEOF' || fail "CRF and plain tables"
import json, sys
for mode, want in (("training_free", ["pseudo_label", "pseudo_label_crf"]),
                   ("checkpoint", ["pseudo_label", "pseudo_label_crf", "segmentation", "segmentation_crf"])):
    plain, crf = (json.load(open(f"{sys.argv[1]}/{mode}-{c}-2/table.json"))["tables"] for c in ("false", "true"))
    assert sorted(crf) == want and sorted(plain) == [n for n in want if not n.endswith("_crf")], (mode, list(crf))
    for name in plain:
        assert plain[name]["confusion_matrix"] == crf[name]["confusion_matrix"], f"{mode} {name}: CRF run differs"
    print(mode, ", ".join(f"{n} {crf[n]['miou']:.2f}" for n in want))
PYEOF

# Picture strips: the first 3 images of the split, whichever rank had them; 5 panels with a
# checkpoint, 4 training-free (no segmentation), each as wide as the image, 4-pixel separators.
"$PY" - "$work" <<'PYEOF' || fail "picture strips"
import os, struct, sys
w = sys.argv[1]
ids = open(f"{w}/voc/ImageSets/Segmentation/val.txt").read().split()[:3]
size = lambda p: struct.unpack(">II", open(p, "rb").read()[16:24])
for run, panels in (("checkpoint-true-2", 5), ("checkpoint-false-1", 5), ("training_free-false-2", 4)):
    got = sorted(f[:-4] for f in os.listdir(f"{w}/{run}/strips"))
    assert got == sorted(ids), (run, got, ids)
    for i in ids:
        gw, gh = size(f"{w}/voc/SegmentationClassAug/{i}.png")
        sw, sh = size(f"{w}/{run}/strips/{i}.png")
        assert (sw, sh) == (panels * gw + 4 * (panels - 1), gh), (run, i, (sw, sh), (gw, gh))
print("strips:", ", ".join(ids))
PYEOF

# Outputs: one palette PNG per val image for each label kind, overlays for the first images.
nval=$(wc -l < "$work/voc/ImageSets/Segmentation/val.txt")
for d in checkpoint-false-2/pseudo_labels checkpoint-false-2/segmentation training_free-true-2/pseudo_labels; do
  n=$(ls "$work/$d" | grep -c '\.png$' || true)
  [ "$n" = "$nval" ] || fail "$d holds $n masks, expected $nval"
done
ls "$work"/checkpoint-false-2/overlays/*.png >/dev/null || fail "no overlays"
"$PY" - "$work"/checkpoint-false-2/segmentation/*.png <<'PYEOF'
import struct, sys
for p in sys.argv[1:]:
    b = open(p, "rb").read()
    assert b[:8] == b"\x89PNG\r\n\x1a\n", p
    w, h, depth, ctype = struct.unpack(">IIBB", b[16:26])
    assert (depth, ctype) == (8, 3), f"{p}: not an 8-bit palette PNG"
    assert b"PLTE" in b, p
print(f"{len(sys.argv) - 1} palette PNGs")
PYEOF
[ -f "$work/checkpoint-false-2/table.csv" ] || fail "no table.csv"

# Test split (no masks): segmentation masks in the evaluation server's layout, no table rows.
mkdir -p "$work/voc_test/ImageSets/Segmentation"
ln -s "$work/voc/JPEGImages" "$work/voc_test/JPEGImages"
head -3 "$work/voc/ImageSets/Segmentation/val.txt" > "$work/voc_test/ImageSets/Segmentation/test.txt"
timeout 300 mpirun -np 2 "${E[@]}" --data_root="$work/voc_test" --data_split=test --eval_mode=checkpoint \
  --eval_checkpoint="$work/run/checkpoint.h5" --eval_scales=64 --eval_test_layout --output_dir="$work/test" \
  > "$work/test.log" 2>&1 || { cat "$work/test.log"; fail "test split"; }
n=$(ls "$work/test/results/VOC2012/Segmentation/comp6_test_cls" | wc -l)
[ "$n" = 3 ] || fail "test layout holds $n masks, expected 3"

# Bad input: a missing checkpoint and a corrupt image are named in the error.
if timeout 120 mpirun -np 2 "${E[@]}" --eval_mode=checkpoint --eval_checkpoint="$work/nope.h5" \
    --output_dir="$work/bad1" > "$work/bad1.log" 2>&1; then fail "missing checkpoint accepted"; fi
grep -q "nope.h5: checkpoint not found" "$work/bad1.log" || { cat "$work/bad1.log"; fail "missing checkpoint not named"; }
first=$(head -1 "$work/voc/ImageSets/Segmentation/val.txt")
echo "not a jpeg" > "$work/voc/JPEGImages/$first.jpg"
if timeout 120 mpirun -np 2 "${E[@]}" --output_dir="$work/bad2" > "$work/bad2.log" 2>&1; then fail "corrupt image accepted"; fi
grep -q "$first.jpg: unrecognised image content" "$work/bad2.log" || { cat "$work/bad2.log"; fail "corrupt image not named"; }
[ ! -f "$work/bad2/table.json" ] || fail "a failed run wrote a table"
echo "PASS"
