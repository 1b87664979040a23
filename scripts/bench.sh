#!/usr/bin/env bash
# The benchmarks, quick settings, each printing its table: the Fox scorer, one training step, the
# decode loop, and c3 beside Hugging Face transformers on a tiny model. JSON results in runs/bench/.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/build.sh
build=${BUILD_DIR:-build}
out=${C3_RUN_DIR:-runs}/bench
mkdir -p "$out"
"$build/bench_scorer" --quick --json "$out/scorer.json"
"$build/bench_train_step" --quick --json "$out/train_step.json"
"$build/bench_reconstruct" --quick --json "$out/reconstruct.json"
python=${C3_PYTHON:-.venv/bin/python}
if "$python" -c 'import transformers, tokenizers' 2>/dev/null; then
  "$python" bench/vs_hf.py --quick --build "$build" --json "$out/vs_hf.json"  # c3 beside Hugging Face
else
  echo "bench.sh: $python has no transformers: bench/vs_hf.py skipped" >&2
fi
