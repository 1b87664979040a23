#!/usr/bin/env bash
# Trains the C3 that reconstructs English prose on the CPU (models/c3-prose-n16, issue 15), by
# `c3 train` alone, in steps that each resume or are skipped when rerun (a killed run carries on):
#   1. the corpus (scripts/build-prose-corpus.sh) and a 4000-piece sentencepiece vocabulary on train/
#   2. three phases, each from the one before (configs/prose-cpu-phase{1,2,3}.json): 1 from scratch on
#      spans of 16-48 tokens into N = 16 latents (1-3x: the latent channel opens), 2 on 16-128 (the
#      longer positions), 3 on 64-128 (4-8x, the target) with the learning rate decayed to 0
#   3. held-out evaluation: data/prose/test-spans.jsonl (pieces of test/ documents) with c3 eval;
#      the Fox pages too, out of domain, when C3_FOX_JSON names en_page_ocr.json (report only)
#   4. ships the newest checkpoint with its curves and model card into models/c3-prose-n16/
# Needs the build (scripts/build.sh). Outputs: runs/prose-phase{1,2,3}/, runs/prose-eval*/.
set -euo pipefail
cd "$(dirname "$0")/.."
build=${BUILD_DIR:-build}
bash scripts/build-prose-corpus.sh data/prose
bash scripts/corpus/prose-tokenizer.sh data/prose "$build/c3"
[[ -f data/prose/test-spans.jsonl ]] || python3 scripts/corpus/heldout_spans.py data/prose data/prose/test-spans.jsonl
for phase in 1 2 3; do
  "$build/c3" --config "configs/prose-cpu-phase$phase.json" train
done
# An evaluation is redone when the model has trained since it was made.
evaluate() { bash scripts/corpus/eval-if-stale.sh runs/prose-phase3 "$@"; }  # OUTPUT DATA [c3 eval options...]
evaluate runs/prose-eval data/prose/test-spans.jsonl --min-tokens 64 --max-tokens 128 --bucket-width 16 \
  --max-new-tokens 192
evals=(--eval heldout=runs/prose-eval)
if [[ -n ${C3_FOX_JSON:-} ]]; then
  for span in 64 128; do  # 4x and 8x
    evaluate "runs/prose-eval-fox-$span" "$C3_FOX_JSON" --max-span-tokens "$span" --min-tokens 1 --max-tokens 100000 \
      --bucket-width 400
    evals+=(--eval "fox-$span=runs/prose-eval-fox-$span")
  done
fi
python3 scripts/corpus/ship_model.py --run runs/prose-phase1 --run runs/prose-phase2 --run runs/prose-phase3 "${evals[@]}" \
  --corpus data/prose --c3 "$build/c3" --notes scripts/corpus/prose-model-notes.md -o models/c3-prose-n16
