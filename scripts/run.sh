#!/usr/bin/env bash
# The main job: build c3, build the demo corpus from a Debian documentation package, train a
# sentencepiece tokenizer on it, train a tiny C3 from scratch on the CPU (configs/tiny-cpu.json),
# compress the held-out documents with it and reconstruct them, evaluate it on them (c3 eval), and
# measure throughput, c3's own and beside Hugging Face transformers. Rerunning resumes/reuses what
# is already there.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/build.sh
build=${BUILD_DIR:-build}
out=${C3_RUN_DIR:-runs}
mkdir -p "$out"
bash scripts/build-corpus.sh data/corpus
if [[ ! -f data/corpus/tokenizer/tokenizer.model ]]; then
  "$build/c3" tokenizer train --input data/corpus/train/*.txt --vocab-size 4000 --model-type bpe -o data/corpus/tokenizer
fi
"$build/c3" --config configs/tiny-cpu.json train -o "$out/tiny-cpu"
model=$(ls -d "$out"/tiny-cpu/checkpoint-* | sort -t- -k2 -n | tail -1)
"$build/c3" info "$model"
# The tiny demo model is not trained long enough to reconstruct prose: this shows the pipeline.
"$build/c3" compress -m "$model" data/corpus/valid -o "$out/latents" --summary "$out/compress.json"
"$build/c3" reconstruct -m "$model" "$out/latents" -o "$out/restored" --max-new-tokens 128 --summary "$out/reconstruct.json"
"$build/c3" eval -m "$model" data/corpus/valid -o "$out/eval" --force --min-tokens 64 --max-tokens 1024 \
  --bucket-width 192 --max-new-tokens 256 --perturb shuffle-words
"$build/bench_scorer" --quick --json "$out/bench_scorer.json"
"$build/bench_train_step" --quick --json "$out/bench_train_step.json"
"$build/bench_reconstruct" --quick --json "$out/bench_reconstruct.json"
python=${C3_PYTHON:-.venv/bin/python}
if "$python" -c 'import transformers, tokenizers' 2>/dev/null; then
  "$python" bench/vs_hf.py --quick --build "$build" --json "$out/bench_vs_hf.json"  # c3 beside Hugging Face
else
  echo "run.sh: $python has no transformers: bench/vs_hf.py skipped" >&2
fi
echo "results in $out/ (metrics: $out/tiny-cpu/metrics.jsonl)" >&2
