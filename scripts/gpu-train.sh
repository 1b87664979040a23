#!/usr/bin/env bash
# The GPU training run: one command for a lent GPU machine (what it has: scripts/gpu-check.sh).
# Trains C3s from scratch with `c3 train` (configs/prose-gpu.json: 4 layers of 384 per side, bf16 with
# fp32 masters) on the prose corpus (scripts/build-prose-corpus.sh; data/prose travels as a carried
# folder, 31 MB) at two compression ratios, N = 16 and N = 32 latents for spans of 128-256 tokens, each
# for half of the minutes (one run, N = 16, when under 4 are left); then `c3 eval` of each on held-out
# spans of the corpus's test split and, out of domain and for the report only, on the Fox pages when
# C3_FOX_JSON names en_page_ocr.json (carry it: ../shared does not travel). Writes the checkpoint
# with the best held-out precision (model files only, each under 16 MiB) and report.md /
# report.json into OUTDIR: 7 files, so that a good model can be committed.
#   scripts/gpu-train.sh OUTDIR [--minutes M]  on the GPU machine: M minutes of training steps (default
#                                             6); M shrinks so that the call ends within 9 minutes
#                                             (C3_GPU_DEADLINE_MIN) when a cold build took its share
#   scripts/gpu-train.sh OUTDIR --dry-run      the same steps on the CPU in about a minute: tiny models,
#                                             a corpus and Fox pages made from the project's own text,
#                                             the existing build (BUILD_DIR, default build); CI runs it
set -euo pipefail
cd "$(dirname "$0")/.."
out="" dry=0 minutes=6
while [ $# -gt 0 ]; do
  case "$1" in
    --dry-run) dry=1 ;;
    --minutes) minutes=${2:?--minutes needs a number}; shift ;;
    -h|--help) sed -n '2,17p' "$0"; exit 0 ;;
    -*) echo "gpu-train: unknown option $1" >&2; exit 2 ;;
    *) out=$1 ;;
  esac
  shift
done
[ -n "$out" ] || { echo "usage: scripts/gpu-train.sh OUTDIR [--minutes M] [--dry-run]" >&2; exit 2; }
[[ $minutes =~ ^[0-9]+([.][0-9]+)?$ ]] || { echo "gpu-train: --minutes $minutes: not a number of minutes" >&2; exit 2; }
mkdir -p "$out"
out=$(cd "$out" && pwd)
work=$(mktemp -d "${TMPDIR:-/tmp}/c3-gpu-train.XXXXXX")
trap 'rm -rf "$work"' EXIT
step() { echo "gpu-train: $*" >&2; }
deadline=$(( ${C3_GPU_DEADLINE_MIN:-9} * 60 ))

if [ $dry -eq 1 ]; then
  build=${BUILD_DIR:-build} python=${C3_PYTHON:-.venv/bin/python} device=cpu corpus=$work/corpus vocab=400
  minutes=0.2 reserve_s=30 min_run_minutes=0.05 two_runs_minutes=0.1
  # Tiny models and spans: the same commands, seconds instead of minutes.
  train_extra=(--encoder preset:tiny --decoder preset:tiny --batch-size 8 --set data.min_tokens=16
               --set data.max_tokens=32 --set data.max_length=256 --set data.validation_samples=4
               --set train.eval_every=0 --set train.log_every=5)
  spans=(--min-words 6 --max-words 12) span_tokens=(16 32) eval_tokens=(4 64) eval_extra=(--limit 8 --max-new-tokens 48)
else
  build=${BUILD_DIR:-build-gpu} python=${C3_PYTHON:-python3} device=cuda corpus=${C3_PROSE:-data/prose} vocab=4000
  reserve_s=150 min_run_minutes=1 two_runs_minutes=4  # reserve: evaluation, loads, the corpus's tokenization
  train_extra=() spans=(--min-words 80 --max-words 200) span_tokens=(128 256) eval_tokens=(128 256)
  eval_extra=(--limit 512 --max-new-tokens 320)
fi
export LD_LIBRARY_PATH="${C3_DEPS:-/opt/c3deps}/usr/lib/x86_64-linux-gnu${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"

step "1/6 inputs: the corpus ($corpus)${C3_FOX_JSON:+, the Fox pages}"
if [ $dry -eq 1 ]; then  # the project's own prose, in the corpus's layout, and three pages in Fox's format
  "$python" - "$corpus" "$work/fox.json" <<'PY'
import json, pathlib, re, sys
corpus, fox = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
text = " ".join(pathlib.Path(p).read_text(encoding="utf-8") for p in ["README.md", "models/c3-prose-n16/README.md"])
words = re.sub(r"[`|#*<>\[\]()]", " ", text).split()
docs = [" ".join(words[i: i + 300]) for i in range(0, len(words), 300)]
for split, chosen in (("train", docs[:-3]), ("test", docs[-3:])):
    (corpus / split).mkdir(parents=True)
    for i, d in enumerate(chosen):
        (corpus / split / f"doc{i:03d}.txt").write_text(d + "\n", encoding="utf-8")
pages = [{"image": f"en_{i}.png", "conversations": [{"from": "human", "value": "<image>\nOCR this image: "},
         {"from": "gpt", "value": d}]} for i, d in enumerate(docs[-3:])]
fox.write_text(json.dumps(pages))
PY
  export C3_FOX_JSON=$work/fox.json
fi
for part in train test; do
  [ -d "$corpus/$part" ] || { echo "gpu-train: $corpus/$part: missing; build the corpus (scripts/build-prose-corpus.sh) and carry data/prose" >&2; exit 1; }
done
if [ -n "${C3_FOX_JSON:-}" ] && [ ! -f "$C3_FOX_JSON" ]; then
  echo "gpu-train: C3_FOX_JSON=$C3_FOX_JSON: no such file" >&2; exit 1
fi

step "2/6 build ($build)"
if [ $dry -eq 1 ]; then
  cmake --build "$build" --target c3 >"$work/build.log" 2>&1 || { tail -20 "$work/build.log" >&2; exit 1; }
else
  bash scripts/gpu/build.sh "$build" "$python" c3 >"$work/build.log" 2>&1 || { tail -20 "$work/build.log" >&2; exit 1; }
fi
build_s=$SECONDS
c3=$build/c3

step "3/6 the corpus's vocabulary and held-out spans"
bash scripts/corpus/prose-tokenizer.sh "$corpus" "$c3" "$vocab" >"$work/tokenizer.log" 2>&1 || { tail -5 "$work/tokenizer.log" >&2; exit 1; }
"$python" scripts/corpus/heldout_spans.py "$corpus" "$work/heldout.jsonl" "${spans[@]}"

# The minutes: what the deadline leaves after the build and the evaluations' reserve.
left=$("$python" -c "print(max(0.0, min($minutes, ($deadline - $SECONDS - $reserve_s) / 60)))")
if "$python" -c "import sys; sys.exit(0 if $left >= $two_runs_minutes else 1)"; then
  latents=(16 32)
else
  latents=(16)
fi
per_run=$("$python" -c "print(round($left / ${#latents[@]}, 3))")
if "$python" -c "import sys; sys.exit(0 if $per_run >= $min_run_minutes else 1)"; then :; else
  echo "gpu-train: only $left minutes left after the build ($build_s s): too few to train; rerun on the warm machine" >&2
  exit 1
fi
step "4/6 training N = ${latents[*]}, $per_run minutes of steps each (build took $build_s s)"
for n in "${latents[@]}"; do
  "$c3" --config configs/prose-gpu.json --device "$device" --log-level warn train -o "$work/run-n$n" \
    --data "$corpus/train" --tokenizer "$corpus/tokenizer" --latent-tokens "$n" --max-minutes "$per_run" \
    --set data.min_tokens="${span_tokens[0]}" --set data.max_tokens="${span_tokens[1]}" "${train_extra[@]}" \
    2>"$work/train-n$n.log" || { tail -5 "$work/train-n$n.log" >&2; exit 1; }
done

step "5/6 evaluation: held-out spans${C3_FOX_JSON:+ and the Fox pages (out of domain)}"
for n in "${latents[@]}"; do
  "$c3" --device "$device" --log-level warn eval -m "$work/run-n$n" "$work/heldout.jsonl" -o "$work/eval-n$n" --force \
    --min-tokens "${eval_tokens[0]}" --max-tokens "${eval_tokens[1]}" --bucket-width 32 --batch-size 64 "${eval_extra[@]}" \
    >/dev/null 2>"$work/eval-n$n.log" || { tail -5 "$work/eval-n$n.log" >&2; exit 1; }
  if [ -n "${C3_FOX_JSON:-}" ]; then
    "$c3" --device "$device" --log-level warn eval -m "$work/run-n$n" "$C3_FOX_JSON" -o "$work/fox-n$n" --force \
      --max-span-tokens "${span_tokens[1]}" --min-tokens 1 --max-tokens 100000 --bucket-width 400 --batch-size 64 \
      "${eval_extra[@]}" >/dev/null 2>"$work/fox-n$n.log" || { tail -5 "$work/fox-n$n.log" >&2; exit 1; }
  fi
done

step "6/6 report and the best checkpoint into $out"
"$python" scripts/gpu/train_report.py "$work" "$out" --device "$device" --build-seconds "$build_s" \
  --span-tokens "${span_tokens[0]}-${span_tokens[1]}" --latents "${latents[@]}"
