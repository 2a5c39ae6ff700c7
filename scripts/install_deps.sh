#!/usr/bin/env bash
# Installs every Debian package the project needs. Idempotent; uses sudo only when not root.
set -euo pipefail
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive

PKGS=(
  build-essential cmake ninja-build pkg-config git ca-certificates
  libtorch-dev libopenblas0-pthread
  libopenmpi-dev openmpi-bin
  libhdf5-dev hdf5-tools
  prometheus-cpp-dev
  libgflags-dev libgoogle-glog-dev
  libgtest-dev googletest
  libopencv-core-dev libopencv-imgproc-dev  # OpenCV core + imgproc only: not imgcodecs, which pulls in GDAL
  zlib1g-dev nlohmann-json3-dev
  libicu-dev  # model/text_cleanup: Unicode classes, lower-casing and NFC as the reference tokenizer
  python3-regex  # tests/clip_tokenizer_reference.py: the reference's pattern (ftfy, used where present, is not in bookworm)
  libjpeg-dev libpng-dev  # data/jpeg_codec, data/png_codec: image files through libjpeg-turbo and libpng themselves
  python3-pil  # tests/pillow_resize_test.cpp compares the resizes with Pillow itself
  python3 python3-h5py python3-numpy
  slurmctld slurmd slurm-client munge  # tests/slurm_train_test.sh runs a one-node SLURM cluster
  prometheus prometheus-pushgateway python3-yaml  # monitoring/ and its tests (promtool, a real scrape)
  iproute2 util-linux  # tests/multinode_test.sh: simulated hosts (ip netns, unshare)
)

missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "install_deps: all ${#PKGS[@]} packages present"
  exit 0
fi
echo "install_deps: installing ${missing[*]}"
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
