#!/usr/bin/env bash
# Builds what the GPU scripts need on a GPU machine that reaches no registry (see
# scripts/gpu-check.sh): unpacks the Debian packages that travel in .gpu-debs/ (made here by
# scripts/gpu/fetch-debs.sh .gpu-debs) under $C3_DEPS (default /opt/c3deps), then configures
# against PYTHON's own torch by the same CMake path as the PyPI build, and builds TARGETS only.
#   scripts/gpu/build.sh BUILD_DIR PYTHON TARGET...
set -euo pipefail
cd "$(dirname "$0")/../.."
build=$1 python=$2
shift 2
deps=${C3_DEPS:-/opt/c3deps}
if [ -d .gpu-debs ]; then
  mkdir -p "$deps"
  for f in .gpu-debs/*.deb; do dpkg -x "$f" "$deps"; done
fi
torch_prefix=$("$python" -c 'import torch; print(torch.utils.cmake_prefix_path)')
cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_PREFIX_PATH="$torch_prefix;$deps/usr" \
  -DC3_PYTHON="$python" -DC3_BUILD_BENCH=ON >/dev/null
cmake --build "$build" -j "$(nproc)" --target "$@"
