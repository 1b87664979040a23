#!/usr/bin/env bash
# The main job: builds c3, then shows the shipped model (models/c3-prose-n16, a C3 that c3 trained
# from scratch on 2 CPU cores) at work on data/samples/ (held-out Python documentation it never saw):
# compresses each text into latent files, reconstructs the texts from the latents alone, evaluates
# it (c3 eval: report.md, summary.json, plots), and prints a few reconstructions under their originals.
# Outputs in runs/demo/ (C3_RUN_DIR=DIR: DIR/demo/); rerunning redoes only what is out of date.
# Training: scripts/train-prose-model.sh (this model), scripts/train-tiny.sh (a minute); benchmarks:
# scripts/bench.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/build.sh
build=${BUILD_DIR:-build}
model=${C3_MODEL:-models/c3-prose-n16}
out=${C3_RUN_DIR:-runs}/demo
samples=data/samples
mkdir -p "$out"
"$build/c3" info "$model"
"$build/c3" compress -m "$model" "$samples" -o "$out/latents" --summary "$out/compress.json"
"$build/c3" reconstruct -m "$model" "$out/latents" -o "$out/restored" --summary "$out/reconstruct.json"
"$build/c3" eval -m "$model" "$samples" -o "$out/eval" --force --min-tokens 1 --max-tokens 100000 --bucket-width 32 \
  --perturb shuffle-words
for name in c-api-stable-0 threading-3 email-contentmanager-2; do  # the shortest (84 tokens, 5.3x), one of 100, the longest (120)
  printf '\n=== %s\n--- original\n%s\n--- reconstructed from %s\n%s\n' "$name" "$(cat "$samples/$name.txt")" \
    "$out/latents/$name.txt.c3" "$(cat "$out/restored/$name.txt")"
done
printf '\n' && cat "$out/eval/report.md"
echo "run.sh: latents in $out/latents/, reconstructions in $out/restored/, evaluation in $out/eval/" >&2
