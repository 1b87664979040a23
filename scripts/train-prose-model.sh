#!/usr/bin/env bash
# Trains the C3 that reconstructs English prose on the CPU (models/c3-prose-n16, issue 15), by
# `c3 train` alone, in steps that each resume or are skipped when rerun (a killed run carries on):
#   1. the corpus (scripts/build-prose-corpus.sh) and a 4000-piece sentencepiece vocabulary on train/
#   2. phase 1, configs/prose-cpu-phase1.json: from scratch, spans of 16-128 tokens into N = 16
#   3. phase 2, configs/prose-cpu-phase2.json: from phase 1, spans of 64-128 tokens (4-8x), lr decayed
#   4. held-out evaluation: data/prose/test-spans.jsonl (pieces of test/ documents) with c3 eval;
#      the Fox pages too, out of domain, when C3_FOX_JSON names en_page_ocr.json (report only)
#   5. ships the newest checkpoint with its curves and model card into models/c3-prose-n16/
# Needs the build (scripts/build.sh). Outputs: runs/prose-phase1/, runs/prose-phase2/, runs/prose-eval*/.
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
evals=(--eval heldout=runs/prose-eval)
"$build/c3" eval -m runs/prose-phase2 data/prose/test-spans.jsonl -o runs/prose-eval \
  --min-tokens 64 --max-tokens 128 --bucket-width 16 --max-new-tokens 192 --batch-size 16 --perturb shuffle-words
if [[ -n ${C3_FOX_JSON:-} ]]; then
  for span in 64 128; do  # 4x and 8x
    "$build/c3" eval -m runs/prose-phase2 "$C3_FOX_JSON" -o "runs/prose-eval-fox-$span" --max-span-tokens "$span" \
      --min-tokens 1 --max-tokens 100000 --bucket-width 400 --batch-size 16 --perturb shuffle-words
    evals+=(--eval "fox-$span=runs/prose-eval-fox-$span")
  done
fi
python3 scripts/corpus/ship_model.py --run runs/prose-phase1 --run runs/prose-phase2 "${evals[@]}" \
  --corpus data/prose --c3 "$build/c3" --notes scripts/corpus/prose-model-notes.md -o models/c3-prose-n16
