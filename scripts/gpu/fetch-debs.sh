#!/usr/bin/env bash
# Downloads the Debian packages that c3 needs besides LibTorch into DIR (default: .gpu-debs in the
# current folder), so they can travel to the GPU machine, which reaches no package registry.
# Add a package here when the project starts to depend on a new one (keep scripts/install-deps.sh's list
# in step). libgloo-dev: the headers LibTorch's c10d headers include, which the wheel does not ship.
# Usage: scripts/gpu/fetch-debs.sh [DIR]
set -euo pipefail
dir=${1:-.gpu-debs}
mkdir -p "$dir"
cd "$dir"
pkgs=(
  libsentencepiece0 libsentencepiece-dev
  nlohmann-json3-dev libcli11-dev
  libspdlog1.10 libspdlog-dev libfmt9 libfmt-dev
  googletest libgtest-dev libgmock-dev
  libpcre2-8-0 libpcre2-16-0 libpcre2-32-0 libpcre2-posix3 libpcre2-dev
  libutf8proc2 libutf8proc-dev
  libgloo-dev
)
apt-get download "${pkgs[@]}" 2>&1 | grep -v '^W: Download is performed unsandboxed' || true
ls -1 *.deb | wc -l | xargs printf '%s packages in %s\n' "$PWD"
