# Sourced by the shell tests (after BUILD=$1): the shared-data check, mpirun as root, fail(), and
# a tiny data set (synthetic VOC, random CLIP, attribute bank).
SHARED=${EXCEL_SHARED_DIR:-$2/../shared}
if [ ! -f "$SHARED/data/text/voc_descriptions.json" ]; then
  [ "${CI:-}" = true ] && { echo "CI=true but $SHARED/data is absent"; exit 1; }
  echo "SKIP: $SHARED/data absent"; exit 77
fi
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
fail() { echo "FAIL: $*"; exit 1; }

# make_tiny_data DIR NUM_IMAGES MIN_SIDE MAX_SIDE: DIR/voc, DIR/clip/clip.jit.pt, DIR/bank.h5
make_tiny_data() {
  "$BUILD/data_tools/make_synthetic_voc" --data_root="$1/voc" --data_num_images="$2" --data_min_side="$3" --data_max_side="$4" 2>/dev/null
  "$BUILD/data_tools/make_random_clip" --output_dir="$1/clip" 2>/dev/null
  "$BUILD/data_tools/build_attribute_bank" --bank_descriptions="$SHARED/data/text/voc_descriptions.json" \
    --model_clip="$1/clip/clip.jit.pt" --bank_clusters=16 --model_bank="$1/bank.h5" 2>/dev/null
}
