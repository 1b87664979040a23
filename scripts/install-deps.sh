#!/usr/bin/env bash
# Installs the Debian packages c3 needs to build and test (idempotent; run as root or with sudo),
# plus any extra package names given as arguments. LibTorch itself comes from PyPI's torch wheel
# (scripts/install-python.sh); libgloo-dev supplies the Gloo headers LibTorch's c10d headers include,
# which the wheel does not ship.
set -euo pipefail
pkgs=(
  build-essential cmake ninja-build ccache pkg-config
  libsentencepiece-dev nlohmann-json3-dev libcli11-dev libspdlog-dev libfmt-dev
  libgtest-dev libgmock-dev
  libpcre2-dev libutf8proc-dev
  libgloo-dev
  clang-format
  "$@"
)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
sudo=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "install-deps: need root to install: ${missing[*]}" >&2; exit 1; }
  sudo=sudo
fi
echo "install-deps: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
