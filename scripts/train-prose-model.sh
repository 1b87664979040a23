#!/usr/bin/env bash
# Trains the C3 that reconstructs English prose on the CPU (issue 15), by `c3 train` alone, in
# phases that each resume when rerun (a killed or interrupted run carries on where it stopped):
#   1. the corpus (scripts/build-prose-corpus.sh) and a 4000-piece sentencepiece vocabulary on train/
#   2. phase 1, configs/prose-cpu-phase1.json: from scratch, spans of 16-48 tokens into N = 16
#   3. phase 2, configs/prose-cpu-phase2.json: from phase 1, spans of 64-128 tokens
#   4. held-out evaluation: data/prose/test-spans.jsonl (pieces of test/ documents) with c3 eval
# Needs the build (scripts/build.sh). Outputs: runs/prose-phase1/, runs/prose-phase2/, runs/prose-eval/.
set -euo pipefail
cd "$(dirname "$0")/.."
build=${BUILD_DIR:-build}
bash scripts/build-prose-corpus.sh data/prose
if [[ ! -f data/prose/tokenizer/tokenizer.model ]]; then
  "$build/c3" tokenizer train --input data/prose/train/*.txt --vocab-size 4000 --model-type bpe -o data/prose/tokenizer
fi
[[ -f data/prose/test-spans.jsonl ]] || python3 scripts/corpus/heldout_spans.py data/prose data/prose/test-spans.jsonl
"$build/c3" --config configs/prose-cpu-phase1.json train
"$build/c3" --config configs/prose-cpu-phase2.json train
"$build/c3" eval -m runs/prose-phase2 data/prose/test-spans.jsonl -o runs/prose-eval --force \
  --min-tokens 64 --max-tokens 128 --bucket-width 16 --max-new-tokens 192 --batch-size 16 --perturb shuffle-words
