#!/usr/bin/env bash
# Installs the Debian packages (when missing), configures (CMake + Ninja, Release, ccache when
# present) and builds c3, its tests and benchmarks into ${BUILD_DIR:-build}.
# Extra arguments go to CMake's configure step (e.g. -DCMAKE_PREFIX_PATH=/path/to/libtorch2).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
build=${BUILD_DIR:-build}
cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release "$@" >/dev/null
cmake --build "$build" -j "$(nproc)"
