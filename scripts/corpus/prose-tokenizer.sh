#!/usr/bin/env bash
# The prose corpus's vocabulary: a sentencepiece BPE of VOCAB pieces (default 4000) made by
# `c3 tokenizer train` on CORPUS/train/ into CORPUS/tokenizer/, unless it is there already.
#   scripts/corpus/prose-tokenizer.sh CORPUS C3_BINARY [VOCAB]
set -euo pipefail
corpus=$1 c3=$2 vocab=${3:-4000}
[[ -f $corpus/tokenizer/tokenizer.model ]] && exit 0
"$c3" tokenizer train --input "$corpus"/train/*.txt --vocab-size "$vocab" --model-type bpe -o "$corpus/tokenizer"
