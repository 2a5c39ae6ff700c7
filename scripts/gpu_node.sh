#!/usr/bin/env bash
# On a GPU node with CUDA, a PyTorch installation, CMake, ninja and a compiler but none of the
# project's other libraries and no network: unpacks the Debian packages that scripts/gpu_bundle.sh
# gathered into a private prefix, builds against the node's LibTorch with -DEXCEL_WITH_CUDA=ON, and
# runs the GPU checks in one bounded run (docs/gpu_node.md). Logs go to $OUT when set.
#
# usage: scripts/gpu_node.sh [--cpu] [--unpack-only | --configure-only]
#   --cpu             no CUDA (EXCEL_WITH_CUDA=OFF): build and run the CPU smoke job only
#   --unpack-only     unpack and check the prefix (every library resolves), then stop
#   --configure-only  stop after CMake's configure step
# env: GPU_BUNDLE_DIR (gpu_bundle), BUILD_DIR (build-node), GPU_NODE_LIMIT_S (480, build included),
#      LIBTORCH (a libtorch folder or CMake prefix; default: python3's torch.utils.cmake_prefix_path,
#      else CMake's own search), CUDA_ROOT (/usr/local/cuda), NCCL_ROOT (default: the nvidia-nccl
#      Python package, else the CUDA toolkit), GPU_NODE_CMAKE_ARGS (extra configure arguments),
#      GPU_NODE_TARGETS (extra build targets), GPU_NODE_HOOKS (the gpu_node.d hooks to run, by
#      name without .sh, e.g. "20_gpu_tests"; default: all. A device runner that allows 600 s per
#      command can run the tests in one call and the benchmarks in a second: the build is kept).
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
CPU=0 UNPACK_ONLY=0 CONFIGURE_ONLY=0
for a in "$@"; do
  case $a in
    --cpu) CPU=1 ;;
    --unpack-only) UNPACK_ONLY=1 ;;
    --configure-only) CONFIGURE_ONLY=1 ;;
    -h|--help) sed -n '2,16p' "$0"; exit 0 ;;
    *) echo "gpu_node: unknown argument $a" >&2; exit 2 ;;
  esac
done
BUNDLE=$(realpath -m "${GPU_BUNDLE_DIR:-gpu_bundle}")
BUILD=$(realpath -m "${BUILD_DIR:-build-node}")
P=$BUILD/prefix
L=$P/usr/lib/x86_64-linux-gnu
LIMIT=${GPU_NODE_LIMIT_S:-480}
LOGS=${OUT:-$BUILD/logs}
mkdir -p "$LOGS"
SUMMARY=$LOGS/gpu_node_summary.txt
: >"$SUMMARY"
start=$SECONDS
say() { echo "gpu_node [$((SECONDS - start)) s] $*" | tee -a "$SUMMARY"; }
die() { say "FAIL: $*"; exit 1; }
left() { echo $((LIMIT - (SECONDS - start))); }

[ -f "$BUNDLE/MANIFEST.tsv" ] || die "no bundle at $BUNDLE (make it with scripts/gpu_bundle.sh on a bookworm machine; GPU_BUNDLE_DIR)"

# ---- 1. unpack (again only when the bundle changed) ------------------------------------------
unpack_deb() {  # DEB: dpkg-deb where there is one, else ar + tar (binutils)
  if command -v dpkg-deb >/dev/null; then
    dpkg-deb -x "$1" "$P"
  else
    local member
    member=$(ar t "$1" | grep '^data\.tar') || return 1
    case $member in
      *.xz) ar p "$1" "$member" | tar -xJ -C "$P" ;;
      *.zst) ar p "$1" "$member" | tar --zstd -x -C "$P" ;;
      *) ar p "$1" "$member" | tar -xz -C "$P" ;;
    esac
  fi
}
postinst() {  # DEB: its postinst script, if any
  if command -v dpkg-deb >/dev/null; then
    dpkg-deb -I "$1" postinst 2>/dev/null
  else
    local member
    member=$(ar t "$1" | grep '^control\.tar') || return 0
    case $member in
      *.xz) ar p "$1" "$member" | tar -xJO ./postinst 2>/dev/null ;;
      *) ar p "$1" "$member" | tar -xzO ./postinst 2>/dev/null ;;
    esac
  fi
}
fix_prefix() {
  # Absolute links point into the node's /: re-point them into the prefix.
  find "$P" -type l -lname '/*' | while IFS= read -r l; do ln -sfn "$P$(readlink "$l")" "$l"; done
  # What the postinst scripts' update-alternatives would make (mpirun, mpicxx, libmpi.so, mpi.pc,
  # libblas.so.3 and liblapack.so.3 for OpenCV): every
  # --install/--slave LINK NAME PATH with literal paths whose PATH was unpacked.
  local deb l t
  for deb in "$BUNDLE"/debs/*.deb; do
    postinst "$deb" | sed -e ':a' -e '/\\$/{N;s/\\\n//;ba' -e '}' |
      grep -oE -- '--(install|slave)[[:space:]]+/[^[:space:]$]+[[:space:]]+[^[:space:]]+[[:space:]]+/[^[:space:]$]+' |
      awk '{print $2, $4}'
  done | while read -r l t; do
    if { [ -e "$P$t" ] || [ -L "$P$t" ]; } && [ ! -e "$P$l" ] && [ ! -L "$P$l" ]; then
      mkdir -p "$(dirname "$P$l")" && ln -s "$P$t" "$P$l"
    fi
  done
  # CMake and pkg-config files that name /usr outright.
  grep -rlE '"/usr/|=/usr|-[IL]/usr' "$L/cmake" "$L/pkgconfig" "$P/usr/share/pkgconfig" "$P/usr/share/cmake" \
      2>/dev/null | while IFS= read -r f; do
    sed -i -E "s#\"/usr/#\"$P/usr/#g; s#=/usr#=$P/usr#g; s#-([IL])/usr#-\\1$P/usr#g" "$f"
  done
}
FIXUPS=2  # raise when fix_prefix changes: the prefix is then unpacked again
stamp="$FIXUPS $(sha256sum <"$BUNDLE/MANIFEST.tsv" | cut -d' ' -f1)"
if [ "$(cat "$P/.bundle" 2>/dev/null)" != "$stamp" ]; then
  rm -rf "$P"
  mkdir -p "$P"
  n=0
  for deb in "$BUNDLE"/debs/*.deb; do
    unpack_deb "$deb" || die "cannot unpack $deb"
    n=$((n + 1))
  done
  fix_prefix
  if [ -d "$BUNDLE/fixtures" ]; then  # the stage fixtures, when the bundle has them
    mkdir -p "$P/fixtures" && cp "$BUNDLE/fixtures"/* "$P/fixtures/" && xz -d "$P/fixtures"/*.xz &&
      (cd "$P/fixtures" && sha256sum -c --quiet SHA256SUMS) || die "fixtures of $BUNDLE do not unpack"
  fi
  echo "$stamp" >"$P/.bundle"
  say "unpacked $n packages into $P ($(du -sm "$P" | cut -f1) MB)"
fi

# The node's Python, asked before the prefix's libraries come first on LD_LIBRARY_PATH: LibTorch
# (torch.utils.cmake_prefix_path), and the nvidia-nccl package's folders.
TORCH_PREFIX=${LIBTORCH:-}
torch_info=""
if [ -z "$TORCH_PREFIX" ] && py=$(python3 -c 'import torch; print(torch.utils.cmake_prefix_path)
print(torch.__version__, torch.version.cuda, int(torch._C._GLIBCXX_USE_CXX11_ABI))' 2>/dev/null); then
  TORCH_PREFIX=$(sed -n 1p <<<"$py")
  torch_info=$(sed -n 2p <<<"$py" | awk '{print "PyTorch " $1 ", CUDA " $2 ", _GLIBCXX_USE_CXX11_ABI=" $3}')
fi
mapfile -t pydirs < <(python3 -c 'import nvidia.nccl as m; print("\n".join(m.__path__))' 2>/dev/null)

# ---- 2. environment: the prefix first, OpenMPI relocated ------------------------------------
export PATH=$P/usr/bin:$PATH
export LD_LIBRARY_PATH=$L:$P/lib/x86_64-linux-gnu:$L/openmpi/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
export OPAL_PREFIX=$P/usr                                   # OpenMPI's install dirs, help files, plugins
export PMIX_INSTALL_PREFIX=$L/pmix2                          # PMIx's plugins
export OMPI_MCA_mca_base_param_files=$P/etc/openmpi/openmpi-mca-params.conf  # sysconfdir is /etc
export PKG_CONFIG_PATH=$L/pkgconfig:$P/usr/share/pkgconfig
# The multiarch include folder (jconfig.h, curl/) that GCC searches only under /usr: as a system one.
export C_INCLUDE_PATH=$P/usr/include/x86_64-linux-gnu${C_INCLUDE_PATH:+:$C_INCLUDE_PATH}
export CPLUS_INCLUDE_PATH=$P/usr/include/x86_64-linux-gnu${CPLUS_INCLUDE_PATH:+:$CPLUS_INCLUDE_PATH}
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
# Without ssh/rsh (the bundle has none) the rsh launcher refuses to start even on one node: the
# single-node launcher instead.
if ! command -v ssh >/dev/null && ! command -v rsh >/dev/null; then export OMPI_MCA_plm=isolated; fi

# Every library the build links or mpirun loads resolves (names what is missing before any build).
{
  for f in "$L"/*.so.* "$L"/openmpi/lib/openmpi3/mca_*.so "$P/usr/bin/orterun" "$P/usr/bin/opal_wrapper"; do
    [ -f "$f" ] || continue
    # a missing library ("libx.so.1 => not found") or symbol version (an older glibc/libstdc++)
    miss=$(ldd "$f" 2>&1 | grep 'not found' | sed -E 's/^[[:space:]]+//; s/ => not found//' | tr '\n' ' ')
    [ -n "$miss" ] && echo "$(basename "$f"): $miss"
  done
} >"$BUILD/prefix_ldd.txt"
# (the plugins of the transports whose libraries the bundle leaves out are pruned: PRUNED.tsv)
if [ -s "$BUILD/prefix_ldd.txt" ]; then
  tee -a "$SUMMARY" <"$BUILD/prefix_ldd.txt"
  die "libraries of the prefix do not resolve (above)"
fi
say "every library of the prefix resolves ($(find "$L" "$L/openmpi/lib/openmpi3" -maxdepth 1 \( -name '*.so.*' -o -name 'mca_*.so' \) -type f | wc -l) files)"
timeout 30 mpirun --version | head -1 | tee -a "$SUMMARY"
[ "$UNPACK_ONLY" = 1 ] && { say "unpack only: done"; exit 0; }

# ---- 3. LibTorch: ABI, c10 logging ------------------------------------------------------------
[ -n "$torch_info" ] && say "$torch_info"
cfg=""
for c in "$TORCH_PREFIX/share/cmake/Torch/TorchConfig.cmake" "$TORCH_PREFIX/Torch/TorchConfig.cmake" \
         "$TORCH_PREFIX/TorchConfig.cmake" /usr/lib/x86_64-linux-gnu/cmake/Torch/TorchConfig.cmake; do
  [ -f "$c" ] && { cfg=$c; break; }
done
[ -n "$cfg" ] || die "no LibTorch: set LIBTORCH to a libtorch folder, or make python3 import torch"
tinc=$(cd "$(dirname "$cfg")/../../.." 2>/dev/null && pwd)/include
[ -d "$tinc/c10" ] || tinc=/usr/include
say "LibTorch: $cfg"
if grep -q '_GLIBCXX_USE_CXX11_ABI=0' "$cfg" || grep -q '_GLIBCXX_USE_CXX11_ABI=0' "$(dirname "$cfg")/../Caffe2/Caffe2Config.cmake" 2>/dev/null; then
  die "this LibTorch uses the old C++ string ABI (_GLIBCXX_USE_CXX11_ABI=0), Debian's glog, gflags, \
prometheus-cpp and OpenCV the new one: their std::string arguments would not link. Use PyTorch >= 2.7 \
(its wheels use the new ABI) or the cxx11-abi libtorch archive (LIBTORCH=...)."
fi
if grep -q '^#define C10_USE_GLOG' "$tinc/c10/macros/cmake_macros.h" 2>/dev/null; then
  say "c10 logs through glog"
else
  say "c10 built without glog: its LOG/CHECK macros are replaced by glog's wherever <glog/logging.h> \
follows the precompiled torch header (glog is a system include: no redefinition warnings)"
fi

# ---- 4. CUDA and NCCL ---------------------------------------------------------------------------
# (CMAKE_POLICY_VERSION_MINIMUM: CMake 4 refuses config files that ask for policies before 3.5)
CMAKE_ARGS=(-DCMAKE_BUILD_TYPE=Release -DEXCEL_BUILD_TESTS=OFF -DCMAKE_POLICY_VERSION_MINIMUM=3.5 "-DCMAKE_PREFIX_PATH=$P/usr;$TORCH_PREFIX"
  "-DHDF5_ROOT=$L/hdf5/serial" "-DMPI_CXX_COMPILER=$P/usr/bin/mpicxx.openmpi" "-DMPIEXEC_EXECUTABLE=$P/usr/bin/mpirun")
command -v ccache >/dev/null && CMAKE_ARGS+=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
TARGETS=(excel_train make_synthetic_voc build_bpe_vocab make_random_clip build_attribute_bank excel_dump_stages)
if [ "$CPU" = 1 ]; then
  CMAKE_ARGS+=(-DEXCEL_WITH_CUDA=OFF)
else
  CUDA_ROOT=${CUDA_ROOT:-/usr/local/cuda}
  [ -x "$CUDA_ROOT/bin/nvcc" ] || die "no CUDA toolkit at $CUDA_ROOT (CUDA_ROOT; --cpu builds without CUDA)"
  export PATH=$CUDA_ROOT/bin:$PATH
  nccl_inc="" nccl_lib=""
  dirs=(${NCCL_ROOT:-})
  dirs+=("${pydirs[@]}" "$CUDA_ROOT" /usr)
  for d in "${dirs[@]}"; do
    [ -d "$d" ] || continue
    h=$(find -L "$d" -maxdepth 3 -name nccl.h 2>/dev/null | head -1)
    l=$(find -L "$d" -maxdepth 3 \( -name libnccl.so -o -name 'libnccl.so.[0-9]*' \) 2>/dev/null | sort | head -1)
    if [ -n "$h" ] && [ -n "$l" ]; then nccl_inc=$(dirname "$h"); nccl_lib=$l; break; fi
  done
  [ -n "$nccl_lib" ] || die "no NCCL (nccl.h and libnccl.so) in NCCL_ROOT, the nvidia-nccl Python package or $CUDA_ROOT"
  export LD_LIBRARY_PATH=$(dirname "$nccl_lib"):$LD_LIBRARY_PATH
  say "CUDA $("$CUDA_ROOT/bin/nvcc" --version | sed -n 's/.*release \([0-9.]*\).*/\1/p'), NCCL $nccl_lib"
  CMAKE_ARGS+=(-DEXCEL_WITH_CUDA=ON "-DCUDAToolkit_ROOT=$CUDA_ROOT" "-DNCCL_LIBRARY=$nccl_lib"
    "-DNCCL_INCLUDE_DIR=$nccl_inc" "-DCMAKE_CUDA_COMPILER=$CUDA_ROOT/bin/nvcc"
    "-DTORCH_CUDA_ARCH_LIST=${TORCH_CUDA_ARCH_LIST:-9.0}")
  TARGETS+=(excel_nccl_check excel_bench_backbone excel_bench_train excel_bench_cache excel_bench_allreduce)  # + gpu_node.d/30_benchmarks.sh
  # gpu_node.d/20_gpu_tests.sh: the CUDA gtest binary alone (the other test binaries are not built)
  CMAKE_ARGS+=(-DEXCEL_BUILD_TESTS=ON)
  TARGETS+=(excel_cuda_tests)
fi
read -r -a extra <<<"${GPU_NODE_CMAKE_ARGS:-}"
read -r -a extra_targets <<<"${GPU_NODE_TARGETS:-}"

# ---- 5. configure and build (bounded) -------------------------------------------------------------
b0=$SECONDS
if ! timeout "$(( $(left) - 60 ))" bash -c 'cmake -S "$0" -B "$1" -G Ninja "${@:2}"' "$ROOT" "$BUILD" \
    "${CMAKE_ARGS[@]}" "${extra[@]}" >"$LOGS/gpu_node_build.txt" 2>&1; then
  tail -30 "$LOGS/gpu_node_build.txt"; die "configure (log: $LOGS/gpu_node_build.txt)"
fi
[ "$CONFIGURE_ONLY" = 1 ] && { say "configured in $((SECONDS - b0)) s; configure only: done"; exit 0; }
if ! timeout "$(( $(left) - 60 ))" cmake --build "$BUILD" -j "$(nproc)" --target "${TARGETS[@]}" "${extra_targets[@]}" \
    >>"$LOGS/gpu_node_build.txt" 2>&1; then
  grep -m5 -B2 -A8 'error' "$LOGS/gpu_node_build.txt" | head -40
  die "build, or out of time (log: $LOGS/gpu_node_build.txt)"
fi
say "configured and built in $((SECONDS - b0)) s ($(grep -c 'redefined' "$LOGS/gpu_node_build.txt") macro-redefinition warnings)"

# ---- 6. checks ----------------------------------------------------------------------------------
status=0
check() {  # NAME LIMIT_S CMD...: runs within the time left, logs to $LOGS/NAME.txt
  local name=$1 lim=$2 rc=0
  shift 2
  [ "$lim" -gt "$(( $(left) - 5 ))" ] && lim=$(( $(left) - 5 ))
  [ "$lim" -lt 10 ] && { say "SKIP $name: out of time"; status=1; return; }
  local t0=$SECONDS
  timeout "$lim" "$@" >"$LOGS/$name.txt" 2>&1 || rc=$?
  if [ "$rc" -eq 0 ]; then say "PASS $name ($((SECONDS - t0)) s)"
  elif [ "$rc" -eq 77 ]; then say "SKIP $name: $(tail -1 "$LOGS/$name.txt")"; else
    tail -15 "$LOGS/$name.txt"; say "FAIL $name (exit $rc, $((SECONDS - t0)) s; $LOGS/$name.txt)"; status=1; fi
}
# A tiny data-parallel job: the tiny world, then 2 ranks train 4 steps under the bundle's mpirun.
smoke() {
  local w=$BUILD/smoke
  rm -rf "$w"
  bash launch/make_tiny_world.sh "$BUILD" "$w" --data_num_images=8 --data_min_side=80 --data_max_side=120 &&
  mpirun -np 2 "$BUILD/src/excel_train" --data_root="$w/voc" --model_clip="$w/clip/clip.jit.pt" \
    --model_bank="$w/bank.h5" --model_bpe="$w/bpe.txt.gz" --model_crop=64 --threads=1 --model_adapter_dim=32 \
    --train_batch=2 --train_max_iters=4 --train_warmup_iters=1 --train_switch_iter=2 --train_pred_target_iter=3 \
    --eval_every=100 --ckpt_every=100 --data_train_split=train --data_val_split=val --output_dir="$w/run" &&
  test -s "$w/run/checkpoint.h5"
}
export BUILD
check smoke_train_np2 120 bash -c "$(declare -f smoke); smoke"
if [ "$CPU" = 0 ]; then
  check device_check 180 env BUILD_DIR="$BUILD" DEVICE_CHECK_BUILD=0 OUT="$LOGS" bash scripts/device_check.sh
  # >>> GPU tests and benchmarks: each executable scripts/gpu_node.d/*.sh runs here, in name order,
  # >>> with BUILD, PREFIX, LOGS, FIXTURES ($PREFIX/fixtures when the bundle has them), TIME_LEFT_S and
  # >>> GPU_BUNDLE_DIR set and the time left as its
  # >>> limit; it prints its numbers and exits 0 (pass), 77 (skip) or else (fail).
  for s in scripts/gpu_node.d/*.sh; do
    [ -x "$s" ] || continue
    if [ -n "${GPU_NODE_HOOKS:-}" ] && ! grep -qw -- "$(basename "$s" .sh)" <<<"$GPU_NODE_HOOKS"; then
      say "SKIP $(basename "$s" .sh): not in GPU_NODE_HOOKS"
      continue
    fi
    check "$(basename "$s" .sh)" "$(left)" env BUILD="$BUILD" PREFIX="$P" LOGS="$LOGS" FIXTURES="$P/fixtures" \
      TIME_LEFT_S="$(( $(left) - 5 ))" GPU_BUNDLE_DIR="$BUNDLE" "$s"
  done
fi
say "done in $((SECONDS - start)) s of $LIMIT: $([ "$status" = 0 ] && echo PASS || echo FAIL)"
exit "$status"
