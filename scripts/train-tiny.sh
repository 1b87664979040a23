#!/usr/bin/env bash
# The smallest training run, a minute on 2 cores: builds data/corpus/ from a Debian documentation
# package (the C++ Annotations), trains a 4000-piece sentencepiece vocabulary on it and a 0.7M-parameter
# C3 from scratch (configs/tiny-cpu.json) into runs/tiny-cpu/. Too small and too short to reconstruct
# prose: it shows `c3 train`, its checkpoints and metrics.jsonl. Rerunning finds it done (or resumes).
# The model that does reconstruct is trained by scripts/train-prose-model.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/build.sh
build=${BUILD_DIR:-build}
out=${C3_RUN_DIR:-runs}
bash scripts/build-corpus.sh data/corpus
if [[ ! -f data/corpus/tokenizer/tokenizer.model ]]; then
  "$build/c3" tokenizer train --input data/corpus/train/*.txt --vocab-size 4000 --model-type bpe -o data/corpus/tokenizer
fi
"$build/c3" --config configs/tiny-cpu.json train -o "$out/tiny-cpu"
"$build/c3" info "$out/tiny-cpu"
