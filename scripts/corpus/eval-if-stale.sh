#!/usr/bin/env bash
# c3 eval of a training run's newest checkpoint into OUT, with the shuffled-words control, unless
# OUT/summary.json is newer than that checkpoint (the model has not trained since):
#   scripts/corpus/eval-if-stale.sh RUN OUT DATA [c3 eval options...]
# The binary is $BUILD_DIR/c3 (default build/c3), with $C3_THREADS threads when set.
set -euo pipefail
run=$1 out=$2 data=$3
shift 3
c3=("${BUILD_DIR:-build}/c3")
[[ -n ${C3_THREADS:-} ]] && c3+=(--threads "$C3_THREADS")
newest=$(ls -d "$run"/checkpoint-* | sort -t- -k3 -n | tail -1)
if [[ -f $out/summary.json && $out/summary.json -nt $newest/model.safetensors ]]; then
  echo "eval-if-stale.sh: $out is up to date" >&2
  exit 0
fi
"${c3[@]}" eval -m "$run" "$data" -o "$out" --force --batch-size 16 --perturb shuffle-words "$@"
