#!/usr/bin/env bash
# The demo's self-contained world, made without downloads or outside files:
#   OUT/voc/          synthetic VOC-layout data (data_tools/make_synthetic_voc) with descriptions.json,
#                     the sentences that describe each class's shape, colour and texture;
#   OUT/bpe.txt.gz    a BPE vocabulary learned from those sentences and the prompts (build_bpe_vocab);
#   OUT/clip/         a random CLIP in OpenAI's layout whose text tower has that vocabulary;
#   OUT/bank.h5       the attribute bank of the descriptions, encoded by that CLIP (build_attribute_bank).
# Usage: launch/make_tiny_world.sh BUILD_DIR OUT_DIR [--data_*=... for make_synthetic_voc]
#                                                   [--model_*=... for make_random_clip]
# The tools that read the world take --model_bpe=OUT/bpe.txt.gz (or EXCEL_BPE_PATH).
set -euo pipefail
BUILD=$1 OUT=$2
shift 2
data=() model=()
for a in "$@"; do
  case "$a" in
    --data_*) data+=("$a") ;;
    --model_*) model+=("$a") ;;
    *) echo "make_tiny_world.sh: unknown argument $a (expected --data_* or --model_* flags)" >&2; exit 2 ;;
  esac
done
mkdir -p "$OUT"
"$BUILD/data_tools/make_synthetic_voc" --data_root="$OUT/voc" "${data[@]}"
"$BUILD/data_tools/build_bpe_vocab" --bank_descriptions="$OUT/voc/descriptions.json" --model_bpe="$OUT/bpe.txt.gz"
"$BUILD/data_tools/make_random_clip" --output_dir="$OUT/clip" --model_bpe="$OUT/bpe.txt.gz" "${model[@]}"
"$BUILD/data_tools/build_attribute_bank" --bank_descriptions="$OUT/voc/descriptions.json" \
  --model_clip="$OUT/clip/clip.jit.pt" --model_bpe="$OUT/bpe.txt.gz" --bank_clusters=16 --model_bank="$OUT/bank.h5"
