#!/usr/bin/env bash
# The demo's self-contained world, made without downloads or outside files:
#   OUT/voc/          synthetic VOC-layout data (data_tools/make_synthetic_voc) with descriptions.json,
#                     the sentences that describe each class's shape, colour and texture;
#   OUT/bpe.txt.gz    a BPE vocabulary learned from those sentences and the prompts (build_bpe_vocab);
#   OUT/clip/         a CLIP in OpenAI's layout whose text tower has that vocabulary: random
#                     (make_random_clip), or with --pretrain contrastively pre-trained on the world's
#                     images and captions (pretrain_tiny_clip, docs/tiny_clip.md; resumes from
#                     OUT/clip/pretrain_state.pt, so a finished one is reused);
#   OUT/bank.h5       the attribute bank of the descriptions, encoded by that CLIP (build_attribute_bank).
# Usage: launch/make_tiny_world.sh BUILD_DIR OUT_DIR [--data_*=... for make_synthetic_voc]
#          [--model_*=... for make_random_clip or pretrain_tiny_clip]
#          [--pretrain [--train_*=... --ckpt_*=... for pretrain_tiny_clip]]
# The tools that read the world take --model_bpe=OUT/bpe.txt.gz (or EXCEL_BPE_PATH).
set -euo pipefail
BUILD=$1 OUT=$2
shift 2
data=() model=() train=() pretrain=0
for a in "$@"; do
  case "$a" in
    --data_style=*) data+=("$a") train+=("$a") ;;  # the world's layout, also for the pre-training's images
    --data_*) data+=("$a") ;;
    --model_*) model+=("$a") ;;
    --train_* | --ckpt_*) train+=("$a") ;;
    --pretrain) pretrain=1 ;;
    *) echo "make_tiny_world.sh: unknown argument $a (expected --data_*, --model_*, --train_*, --ckpt_* or --pretrain)" >&2; exit 2 ;;
  esac
done
# The pre-training is chaotic in its rounding (docs/tiny_clip.md, "One CLIP on every machine"): the
# OpenBLAS kernel and ATen's vector code that run it decide which CLIP comes out. So the CLIP and its
# bank are made with both pinned, OpenBLAS's Haswell kernel and ATen's AVX2 code, wherever the CPU
# has AVX2 and FMA: every such x86-64 machine then makes the same CLIP (with the same LibTorch and
# OpenBLAS builds). The stages after it run on the machine's own kernel.
pinned=()
if grep -qw avx2 /proc/cpuinfo && grep -qw fma /proc/cpuinfo; then
  pinned=(env OPENBLAS_CORETYPE=Haswell ATEN_CPU_CAPABILITY=avx2)
else
  echo "make_tiny_world.sh: this CPU lacks AVX2 or FMA, so its CLIP differs from the one documented" >&2
fi
mkdir -p "$OUT"
"$BUILD/data_tools/make_synthetic_voc" --data_root="$OUT/voc" "${data[@]}"
"$BUILD/data_tools/build_bpe_vocab" --bank_descriptions="$OUT/voc/descriptions.json" --model_bpe="$OUT/bpe.txt.gz"
if [ "$pretrain" = 1 ]; then
  "${pinned[@]}" "$BUILD/data_tools/pretrain_tiny_clip" --output_dir="$OUT/clip" --model_bpe="$OUT/bpe.txt.gz" \
    --bank_descriptions="$OUT/voc/descriptions.json" "${model[@]}" "${train[@]}"
else
  "${pinned[@]}" "$BUILD/data_tools/make_random_clip" --output_dir="$OUT/clip" --model_bpe="$OUT/bpe.txt.gz" "${model[@]}"
fi
"${pinned[@]}" "$BUILD/data_tools/build_attribute_bank" --bank_descriptions="$OUT/voc/descriptions.json" \
  --model_clip="$OUT/clip/clip.jit.pt" --model_bpe="$OUT/bpe.txt.gz" --bank_clusters=16 --model_bank="$OUT/bank.h5"
