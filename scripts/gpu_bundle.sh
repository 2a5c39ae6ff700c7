#!/usr/bin/env bash
# Gathers, on a Debian bookworm machine with network, the Debian packages a GPU node lacks for the
# build (everything but LibTorch and CUDA) into one folder that travels with the working tree;
# scripts/gpu_node.sh unpacks and uses it there (docs/gpu_node.md).
#
# usage: scripts/gpu_bundle.sh [OUT_DIR] [--fixtures DIR] [--reference DIR]
#   OUT_DIR     default gpu_bundle/ in the repository (git-ignored)
#   --fixtures  also copy a stage-fixture set (fixture.h5 and clip_tiny.jit.pt, xz-compressed,
#               config.json, and compare.py from the folder above) into OUT_DIR/fixtures, for the
#               GPU parity checks (25.6 MB more for the public set; 49.1 MB in all, see docs/gpu_node.md)
#   --reference DIR  also pack the reference ExCEL code extracted into DIR, with the step timer
#               time_reference_step.py (in DIR, or named by --reference-script FILE), as
#               OUT_DIR/reference/excel-ref.tar.xz: scripts/gpu_node.d/30_benchmarks.sh times the
#               reference step beside ours when it is there (docs/gpu_node.md, "Benchmarks")
# env: GPU_BUNDLE_MAX_MB (50): fail when the bundle is larger; GPU_BUNDLE_NO_UPDATE=1: skip apt-get update.
#
# Which packages: the ROOTS below (what CMakeLists.txt and the CMake config files it loads need),
# plus their run-time dependency closure, minus what a minimal node has (Priority: required,
# build-essential, python3) and minus EXCLUDE (scripts/gpu_bundle_closure.py). Each package is
# downloaded with apt-get download, its sha256 checked against the archive's, and repacked without
# what the build never reads (static libraries, documentation, manual pages, translations, the PRUNE
# list: libraries nothing bundled or linked NEEDs); MANIFEST.tsv lists both hashes, PRUNED.tsv
# what the PRUNE list removed.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=gpu_bundle
FIXTURES="" REFERENCE="" REF_SCRIPT=""
while [ $# -gt 0 ]; do
  case $1 in
    --fixtures) FIXTURES=${2:?--fixtures needs a folder}; shift 2 ;;
    --fixtures=*) FIXTURES=${1#--fixtures=}; shift ;;
    --reference) REFERENCE=${2:?--reference needs a folder}; shift 2 ;;
    --reference=*) REFERENCE=${1#--reference=}; shift ;;
    --reference-script) REF_SCRIPT=${2:?--reference-script needs a file}; shift 2 ;;
    --reference-script=*) REF_SCRIPT=${1#--reference-script=}; shift ;;
    -h|--help) sed -n '2,24p' "$0"; exit 0 ;;
    -*) echo "gpu_bundle: unknown option $1" >&2; exit 2 ;;
    *) OUT=$1; shift ;;
  esac
done
MAX_MB=${GPU_BUNDLE_MAX_MB:-50}
if [ -n "$FIXTURES" ] && [ ! -f "$FIXTURES/fixture.h5" ]; then
  echo "gpu_bundle: --fixtures $FIXTURES has no fixture.h5" >&2; exit 2
fi
if [ -n "$REFERENCE" ]; then
  REF_SCRIPT=${REF_SCRIPT:-$REFERENCE/time_reference_step.py}
  [ -f "$REFERENCE/model/model_excel.py" ] ||
    { echo "gpu_bundle: --reference $REFERENCE has no model/model_excel.py (the code extract.sh writes)" >&2; exit 2; }
  [ -f "$REF_SCRIPT" ] ||
    { echo "gpu_bundle: no step timer $REF_SCRIPT (put time_reference_step.py in --reference or name it with --reference-script)" >&2; exit 2; }
fi
if ! grep -q "VERSION_CODENAME=bookworm" /etc/os-release 2>/dev/null; then
  echo "gpu_bundle: needs Debian bookworm (the node uses its packages' file layout)" >&2; exit 2
fi

ROOTS=(
  libopenmpi-dev openmpi-bin           # MPI::MPI_CXX through mpicxx; mpirun
  libhdf5-dev                          # HDF5 C API (find_package(HDF5 COMPONENTS C))
  libgoogle-glog-dev libgflags-dev
  libunwind-dev                        # glog-config.cmake: find_dependency(Unwind)
  prometheus-cpp-dev
  libcivetweb-dev libcurl4-openssl-dev # prometheus-cpp-config.cmake: find_dependency(civetweb), (CURL)
  nlohmann-json3-dev libgtest-dev
  libopencv-core-dev libopencv-imgproc-dev
  libjpeg62-turbo-dev libpng-dev zlib1g-dev
  libicu-dev                           # ICU::uc (model/text_cleanup)
)
EXCLUDE=(
  # HDF5: the C library only (no C++, high-level or Fortran API; no h5cc wrappers, the node finds
  # the library directly).
  libhdf5-cpp-103-1 libhdf5-hl-cpp-100 libhdf5-hl-100 libhdf5-fortran-102 libhdf5-hl-fortran-100 hdf5-helpers
  # OpenMPI: no Fortran compiler, no ssh (one node); the InfiniBand/UCX/libfabric transports that
  # Debian's own openmpi-mca-params.conf turns off (btl ^uct,openib,ofi; mtl ^ofi; pml ^ucx).
  gfortran gfortran-12 libgfortran-12-dev openssh-client
  libucx0 libfabric1 libibverbs1 ibverbs-providers librdmacm1
  # hwloc's optional plugins (OpenCL/NVML/X11) and Mesa's GLX vendor library (LLVM) that OpenCV's
  # libGLX dependency would pull in: only libGLX.so.0 itself is loaded.
  libhwloc-plugins libglx-mesa0
  # PSM/PSM2 (Omni-Path and TrueScale adapters, and libnuma for PSM2): only OpenMPI's mca_mtl_psm*
  # plugins load them, and those are pruned below (one node: ob1 over shared memory and TCP).
  libpsm-infinipath1 libpsm2-2 libnuma1
  # documentation, sources and tools
  libjs-jquery libjs-jquery-ui googletest icu-devtools
)
# Files removed from single packages ("package|globs relative to /"): libraries no bundled ELF,
# no CMake/pkg-config file the build loads and no link line needs. Listed in PRUNED.tsv.
PRUNE=(
  # ICU: CMakeLists.txt finds ICU::uc only (libicuuc NEEDs libicudata alone); i18n, io, tu and
  # test are unused, and nothing bundled NEEDs them.
  "libicu72|usr/lib/*/libicui18n.so.* usr/lib/*/libicuio.so.* usr/lib/*/libicutu.so.* usr/lib/*/libicutest.so.*"
  "libicu-dev|usr/lib/*/libicui18n.so usr/lib/*/libicuio.so usr/lib/*/libicutu.so usr/lib/*/libicutest.so usr/lib/*/pkgconfig/icu-i18n.pc usr/lib/*/pkgconfig/icu-io.pc"
  # OpenMPI: the plugins of the transports whose libraries are excluded above (InfiniBand verbs,
  # UCX, libfabric: off in Debian's openmpi-mca-params.conf; PSM/PSM2) and their common libraries.
  "libopenmpi3|usr/lib/*/openmpi/lib/openmpi3/mca_*_openib.so usr/lib/*/openmpi/lib/openmpi3/mca_*_ofi.so usr/lib/*/openmpi/lib/openmpi3/mca_*_ucx.so usr/lib/*/openmpi/lib/openmpi3/mca_*_uct.so usr/lib/*/openmpi/lib/openmpi3/mca_mtl_psm.so usr/lib/*/openmpi/lib/openmpi3/mca_mtl_psm2.so usr/lib/*/libmca_common_ofi.so.* usr/lib/*/libmca_common_ucx.so.* usr/lib/*/libmca_common_verbs.so.*"
  "libopenmpi-dev|usr/lib/*/libmca_common_ofi.so usr/lib/*/libmca_common_ucx.so usr/lib/*/libmca_common_verbs.so usr/lib/*/openmpi/lib/libmca_common_ofi.so usr/lib/*/openmpi/lib/libmca_common_ucx.so usr/lib/*/openmpi/lib/libmca_common_verbs.so usr/lib/*/fortran"
  # Fortran module files (no Fortran compiler on the node; the C API is used)
  "libhdf5-dev|usr/include/hdf5/serial/*.mod"
)
join() { local IFS=,; echo "$*"; }

SUDO=""; SANDBOX=""
if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; else SANDBOX=1; fi  # root: no _apt sandbox for a private folder
start=$SECONDS
[ "${GPU_BUNDLE_NO_UPDATE:-0}" = 1 ] || $SUDO apt-get update -qq
mapfile -t PKGS < <(python3 scripts/gpu_bundle_closure.py --roots "$(join "${ROOTS[@]}")" \
                      --exclude "$(join "${EXCLUDE[@]}")")
echo "gpu_bundle: ${#PKGS[@]} packages"

CACHE=build-gpu-bundle-cache   # the archive's own .deb files (ignored, not carried)
mkdir -p "$CACHE" "$OUT"
rm -rf "$OUT/debs" "$OUT/fixtures" "$OUT/reference"
mkdir -p "$OUT/debs"
MANIFEST=$OUT/MANIFEST.tsv
printf 'package\tversion\tarchive_bytes\tarchive_sha256\tbundled_file\tbundled_bytes\tbundled_sha256\tpruned_files\n' >"$MANIFEST"
PRUNED=$OUT/PRUNED.tsv   # package, path: what PRUNE removed
printf 'package\tpath\n' >"$PRUNED"
STAGE=$(mktemp -d)
trap 'rm -rf "$STAGE"' EXIT
for p in "${PKGS[@]}"; do
  fields=$(apt-cache show --no-all-versions "$p")
  ver=$(awk '/^Version:/{print $2; exit}' <<<"$fields")
  want=$(awk '/^SHA256:/{print $2; exit}' <<<"$fields")
  deb=$(ls "$CACHE/${p}_"*.deb 2>/dev/null | head -1 || true)
  if [ -z "$deb" ] || [ "$(sha256sum "$deb" | cut -d' ' -f1)" != "$want" ]; then
    rm -f "$CACHE/${p}_"*.deb
    (cd "$CACHE" && apt-get download -qq ${SANDBOX:+-o APT::Sandbox::User=root} "$p")
    deb=$(ls "$CACHE/${p}_"*.deb | head -1)
  fi
  got=$(sha256sum "$deb" | cut -d' ' -f1)
  if [ "$got" != "$want" ]; then
    echo "gpu_bundle: $deb: sha256 $got is not the archive's $want" >&2; exit 1
  fi
  # Repack without what the build never reads.
  rm -rf "$STAGE/pkg"
  dpkg-deb -R "$deb" "$STAGE/pkg"
  # static libraries that have a shared twin and that no CMake file of the package imports (GTest
  # ships only static ones, gflags' config checks its static ones exist: those stay), libtool
  # files, documentation but the copyright files, manual pages, translations
  while IFS= read -r a; do
    if { [ -e "${a%.a}.so" ] || [ -L "${a%.a}.so" ]; } &&
       ! grep -rqsF "$(basename "$a")" "$STAGE/pkg"/usr/lib/*/cmake "$STAGE/pkg"/usr/share/cmake*; then
      rm -f "$a"
    fi
  done < <(find "$STAGE/pkg" -name '*.a' -not -path '*/DEBIAN/*')
  find "$STAGE/pkg" -name '*.la' -not -path '*/DEBIAN/*' -delete
  [ -d "$STAGE/pkg/usr/share/doc" ] && find "$STAGE/pkg/usr/share/doc" \( -type f -o -type l \) -not -name copyright -delete
  rm -rf "$STAGE/pkg"/usr/share/{man,info,locale,lintian,bug,doc-base} "$STAGE/pkg/DEBIAN/md5sums"
  npruned=0
  for rule in "${PRUNE[@]}"; do
    [ "${rule%%|*}" = "$p" ] || continue
    hits=$(cd "$STAGE/pkg" && shopt -s nullglob && eval "echo ${rule#*|}")
    [ -n "$hits" ] || { echo "gpu_bundle: PRUNE rule for $p matches nothing: ${rule#*|}" >&2; exit 1; }
    for f in $hits; do
      printf '%s\t/%s\n' "$p" "$f" >>"$PRUNED"; rm -rf "${STAGE:?}/pkg/$f"; npruned=$((npruned + 1))
    done
  done
  find "$STAGE/pkg" -depth -type d -empty -not -path "$STAGE/pkg" -delete
  out=$OUT/debs/$(basename "$deb")
  dpkg-deb --root-owner-group -Zxz -z9 -b "$STAGE/pkg" "$out" >/dev/null
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$p" "$ver" "$(stat -c %s "$deb")" "$got" "debs/$(basename "$deb")" \
    "$(stat -c %s "$out")" "$(sha256sum "$out" | cut -d' ' -f1)" "$npruned" >>"$MANIFEST"
done

if [ -n "$FIXTURES" ]; then
  mkdir -p "$OUT/fixtures"
  cp "$FIXTURES/fixture.h5" "$FIXTURES/clip_tiny.jit.pt" "$OUT/fixtures/"
  [ -f "$FIXTURES/config.json" ] && cp "$FIXTURES/config.json" "$OUT/fixtures/"
  [ -f "$FIXTURES/../compare.py" ] && cp "$FIXTURES/../compare.py" "$OUT/fixtures/"
  chmod -R u+w "$OUT/fixtures"
  (cd "$OUT/fixtures" && sha256sum ./* >SHA256SUMS && xz -T1 --lzma2=preset=9e,lc=0,lp=2,pb=2 fixture.h5 clip_tiny.jit.pt)
  # (gpu_node.sh unpacks them with xz -d; lp=2,pb=2 align LZMA's contexts to the 4-byte floats
  # both files mostly hold: 0.67 MB smaller than xz -9)
fi

if [ -n "$REFERENCE" ]; then  # the code (.py and the BPE vocabulary) and the timer, one archive
  mkdir -p "$OUT/reference"
  cp "$REF_SCRIPT" "$STAGE/time_reference_step.py"
  tar -C "$REFERENCE" --exclude=__pycache__ --exclude=time_reference_step.py -cf "$STAGE/ref.tar" .
  tar -C "$STAGE" -rf "$STAGE/ref.tar" ./time_reference_step.py
  xz -T1 -9 -c "$STAGE/ref.tar" >"$OUT/reference/excel-ref.tar.xz"
fi

# Sizes: per package (bundled .deb), then the whole folder.
echo "gpu_bundle: bundled size per package (MB, after repacking; archive size in parentheses)"
tail -n +2 "$MANIFEST" | sort -t$'\t' -k6,6nr |
  awk -F'\t' '{printf "  %-32s %6.2f (%6.2f)\n", $1, $6/1e6, $3/1e6; b+=$6; a+=$3}
              END {printf "  %-32s %6.2f (%6.2f)\n", "all packages", b/1e6, a/1e6}'
[ -d "$OUT/fixtures" ] && echo "  fixtures: $(du -cb "$OUT/fixtures"/* | tail -1 | cut -f1 | awk '{printf "%.2f", $1/1e6}') MB"
[ -d "$OUT/reference" ] && echo "  reference: $(du -cb "$OUT/reference"/* | tail -1 | cut -f1 | awk '{printf "%.2f", $1/1e6}') MB"
total=$(du -sb "$OUT" | cut -f1)
total_mb=$(awk -v b="$total" 'BEGIN{printf "%.1f", b/1e6}')
echo "gpu_bundle: $OUT is $total_mb MB (limit $MAX_MB MB), made in $((SECONDS - start)) s"
if awk -v b="$total" -v m="$MAX_MB" 'BEGIN{exit !(b > m*1e6)}'; then
  echo "gpu_bundle: FAIL: larger than $MAX_MB MB" >&2; exit 1
fi
