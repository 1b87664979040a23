#!/usr/bin/env bash
# Installs what is missing (Debian packages, the pinned Python environment .venv/), configures
# (CMake + Ninja, Release, ccache when present) against the LibTorch inside that environment's
# PyTorch, and builds c3, its tests and benchmarks into ${BUILD_DIR:-build}.
#   C3_PYTHON=/path/to/python: use that Python's torch (and, for the tests, its transformers)
#   instead of creating .venv/ (a cluster where PyTorch is already installed).
# Extra arguments go to CMake's configure step; BUILD_TARGETS (space-separated) builds only those.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
python=${C3_PYTHON:-}
if [ -z "$python" ]; then
  bash scripts/install-python.sh
  python="$(cd "${C3_VENV:-.venv}/bin" && pwd)/python"  # absolute, but not resolved: a venv's python is a link
fi
torch_prefix=$("$python" -c 'import torch; print(torch.utils.cmake_prefix_path)' 2>/dev/null) ||
  { echo "build: $python cannot import torch (set C3_PYTHON to a Python with PyTorch 2.5+)" >&2; exit 1; }
build=${BUILD_DIR:-build}
cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_PREFIX_PATH="$torch_prefix" \
  -DC3_PYTHON="$python" "$@" >/dev/null
cmake --build "$build" -j "$(nproc)" ${BUILD_TARGETS:+--target $BUILD_TARGETS}
