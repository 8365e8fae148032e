#!/usr/bin/env bash
# Installs every dependency of jslds (Debian 12, as root), then configures and builds Release
# into build/. Idempotent: packages already present are not re-installed, an existing build
# tree is not re-configured, and ninja rebuilds only what changed.
#
#   bash scripts/setup.sh            # everything, including tests and benchmarks
#   JSLDS_BUILD_TARGETS=jslds bash scripts/setup.sh   # only the program
set -euo pipefail
cd "$(dirname "$0")/.."

# libdnnl-dev: oneDNN's sgemm for the fixed-point search; its CMake package also looks for
# OpenCL (ocl-icd-opencl-dev, only a Recommends of libdnnl-dev).
PACKAGES=(
  build-essential cmake ninja-build ccache pkg-config
  libtorch-dev libopenblas0-openmp libdnnl-dev ocl-icd-opencl-dev
  libopenmpi-dev openmpi-bin
  libsqlite3-dev sqlite3
  libfmt-dev libtomlplusplus-dev libgtest-dev libcli11-dev nlohmann-json3-dev
  libhdf5-dev libmatio-dev libssl-dev libboost-dev
  python3  # scripts/gen_config_doc.py, which a test compares docs/config.md with
)

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}" >&2
  if [ "$(id -u)" -ne 0 ]; then
    echo "setup: installing packages needs root (run as root or with sudo)" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update
  apt-get install -y "${missing[@]}"
else
  echo "setup: all packages present" >&2
fi

# Debian's LibTorch multiplies through the system BLAS; make sure the alternative points at
# OpenBLAS (the reference BLAS is 16-30x slower; STYLE.md, Known hazards).
if command -v update-alternatives >/dev/null; then
  for alt in libblas.so.3-x86_64-linux-gnu liblapack.so.3-x86_64-linux-gnu; do
    cur=$(update-alternatives --query "$alt" 2>/dev/null | awk '/^Value:/{print $2}')
    best=$(update-alternatives --list "$alt" 2>/dev/null | grep -m1 openblas || true)
    if [ -n "$best" ] && [ "$cur" != "$best" ]; then
      update-alternatives --set "$alt" "$best" >/dev/null
    fi
  done
fi

BUILD_DIR=${JSLDS_BUILD_DIR:-build}
if [ ! -f "$BUILD_DIR/build.ninja" ]; then
  cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=Release
fi
# Two compile jobs fit in memory with LibTorch (about 1.5 GB each).
cmake --build "$BUILD_DIR" --parallel "${JSLDS_JOBS:-$(nproc)}" ${JSLDS_BUILD_TARGETS:+--target $JSLDS_BUILD_TARGETS}
echo "setup: built $BUILD_DIR/cli/jslds" >&2
