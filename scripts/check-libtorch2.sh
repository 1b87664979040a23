#!/usr/bin/env bash
# Compile-checks every c3 source against LibTorch 2.x headers (Debian trixie's 2.6), on a machine
# whose installed LibTorch is 1.13: catches 2.x API breaks without a GPU or a 2.x install. It only
# parses (-fsyntax-only); the 2.x libraries need a newer glibc and cannot link here.
#   scripts/check-libtorch2.sh [HEADERS_DIR]   (default: .libtorch2, fetched when missing)
# Exit status: 0 all compile, 1 a source fails to compile, 3 the headers could not be fetched.
set -euo pipefail
cd "$(dirname "$0")/.."
dir=$(realpath -m "${1:-.libtorch2}")
inc="$dir/usr/include"
if [ ! -f "$inc/torch/csrc/api/include/torch/version.h" ]; then
  echo "check-libtorch2: fetching LibTorch 2.x headers into $dir" >&2
  lists=$(mktemp -d)
  trap 'rm -rf "$lists"' EXIT
  mirror=$(grep -h -E '^URIs:' /etc/apt/sources.list.d/*.sources 2>/dev/null | head -n 1 | awk '{print $2}')
  [ -n "$mirror" ] || mirror=$(grep -h -E '^deb ' /etc/apt/sources.list 2>/dev/null | head -n 1 | awk '{print $2}')
  [ -n "$mirror" ] || { echo "check-libtorch2: no Debian package source configured" >&2; exit 1; }
  mkdir -p "$lists/lists/partial" "$dir"
  echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $mirror trixie main" >"$lists/sources.list"
  opts=(-o Dir::Etc::SourceList="$lists/sources.list" -o Dir::Etc::SourceParts=/dev/null
        -o Dir::State::Lists="$lists/lists")
  # Exit 3 = the headers could not be fetched (no network): the caller decides what that means.
  apt-get "${opts[@]}" update >/dev/null 2>&1 || { echo "check-libtorch2: cannot reach the Debian archive" >&2; exit 3; }
  (cd "$lists" && apt-get "${opts[@]}" download libtorch-dev/trixie libgloo-dev/trixie >/dev/null 2>&1) ||
    { echo "check-libtorch2: cannot download libtorch-dev/trixie" >&2; exit 3; }
  for f in "$lists"/*.deb; do dpkg -x "$f" "$dir"; done
fi
version=$(grep -hE 'define TORCH_VERSION_(MAJOR|MINOR|PATCH) ' "$inc/torch/csrc/api/include/torch/version.h" |
          awk '{print $3}' | paste -sd.)
build=${BUILD_DIR:-build}
[ -f "$build/include/c3/version.h" ] || { echo "check-libtorch2: configure $build first (scripts/build.sh)" >&2; exit 1; }
mapfile -t sources < <(git ls-files 'src/*.cpp' 'bench/*.cpp' 'tests/*.cpp')
echo "check-libtorch2: ${#sources[@]} sources against LibTorch $version headers" >&2
printf '%s\n' "${sources[@]}" | xargs -P "$(nproc)" -I{} sh -c \
  'g++ -std=c++17 -fsyntax-only -w -DUSE_C10D_GLOO -I "$0" -I "$0/torch/csrc/api/include" -I include \
     -I "$1/include" -I src -I tests/support -DC3_BINARY=\"c3\" -DC3_TEST_DATA=\"data\" -DC3_SPM_SHIM_BUILD_PATH=\"lib\" {} || { echo "FAILED: {}" >&2; exit 255; }' "$inc" "$build" || exit 1
echo "check-libtorch2: all ${#sources[@]} sources compile against LibTorch $version" >&2
