#!/usr/bin/env bash
# Installs the build into a temporary prefix, builds tests/package against it with find_package(c3)
# and runs the program. Usage: check.sh BUILD_DIR TORCH_DIR
set -euo pipefail
build=$1 torch_dir=$2
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cmake --install "$build" --prefix "$work/prefix" > "$work/install.log"
test -f "$work/prefix/lib/cmake/c3/c3Config.cmake"
test -f "$work/prefix/include/c3/version.h"
generator=()
command -v ninja > /dev/null && generator=(-G Ninja)
cmake -S "$here" -B "$work/build" "${generator[@]}" -DCMAKE_BUILD_TYPE=Release \
  -DCMAKE_PREFIX_PATH="$work/prefix" -DTorch_DIR="$torch_dir" > "$work/configure.log" || { cat "$work/configure.log"; exit 1; }
cmake --build "$work/build" > "$work/build.log" || { cat "$work/build.log"; exit 1; }
"$work/build/c3_consumer"
