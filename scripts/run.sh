#!/usr/bin/env bash
# The main job until training lands: build, write a random tiny Qwen2 checkpoint in Hugging Face
# layout, describe it, measure Qwen2 forward throughput, and tokenize with the Qwen2 tokenizer.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/build.sh
build=${BUILD_DIR:-build}
out=${C3_RUN_DIR:-runs/demo}
mkdir -p "$out"
"$build/c3" init --force --preset tiny "$out/qwen2-tiny"
"$build/c3" info "$out/qwen2-tiny"
"$build/bench_qwen2_forward" --quick --json "$out/bench_qwen2_forward.json"
printf 'Context cascade compression, tokenized.\n' | "$build/c3" tokenize --tokenizer tests/data/qwen2-tokenizer
"$build/bench_tokenizer_encode" tests/data/qwen2-tokenizer LICENSE README.md --megabytes 4
echo "results in $out/" >&2
