#!/usr/bin/env bash
# Creates the project's Python environment (.venv/, or $C3_VENV) with the packages pinned in
# scripts/requirements.txt: PyTorch 2.11 (CUDA 13; its LibTorch is what c3 builds against) and the
# Hugging Face / NLTK references the tests compare c3 with. Idempotent: does nothing when the
# environment already holds exactly these pins. The first run downloads about 4.5 GB.
set -euo pipefail
cd "$(dirname "$0")/.."
venv=${C3_VENV:-.venv}
requirements=scripts/requirements.txt
stamp="$venv/.c3-requirements"
if [ -x "$venv/bin/python" ] && cmp -s "$requirements" "$stamp"; then
  exit 0
fi
if [ ! -x "$venv/bin/python" ]; then
  echo "install-python: creating $venv" >&2
  python3 -m venv "$venv" 2>/dev/null || {
    echo "install-python: python3 -m venv failed; installing Debian's python3-venv" >&2
    bash scripts/install-deps.sh python3-venv
    rm -rf "$venv"
    python3 -m venv "$venv"
  }
fi
echo "install-python: installing $requirements into $venv (first time: ~4.5 GB)" >&2
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$requirements"
cp "$requirements" "$stamp"
