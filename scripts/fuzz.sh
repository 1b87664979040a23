#!/usr/bin/env bash
# Runs the libFuzzer targets of a sanitized build (scripts/sanitize.sh makes it): for each target,
# first every input of fuzz/regressions/TARGET/ (inputs that once failed, kept with their fix) and
# the seeds of fuzz/corpus/TARGET/, then SECONDS of fuzzing. New coverage goes to
# BUILD/fuzz-work/TARGET/ (kept between runs, so longer runs build on earlier ones); a failing input
# is saved to BUILD/fuzz-findings/TARGET/ (emptied at the start of each run) and the script exits
# 1 naming it. Prints a table and writes BUILD/fuzz-report.json.
#   scripts/fuzz.sh [--seconds N] [--seed S] [TARGET...]   (default: 20 s, a random seed, every target)
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=20
seed=0  # libFuzzer: 0 draws one
targets=()
while [ $# -gt 0 ]; do
  case "$1" in
    --seconds) seconds=$2; shift 2 ;;
    --seed) seed=$2; shift 2 ;;
    -h|--help) sed -n '2,8p' "$0"; exit 0 ;;
    *) targets+=("$1"); shift ;;
  esac
done
build=${BUILD_DIR:-build-sanitize}
[ ${#targets[@]} -gt 0 ] || targets=($(cd fuzz/corpus && ls))
source scripts/sanitizer-env.sh
report="$build/fuzz-report.json"
rows=()
failed=()
printf '%-20s %8s %12s %10s %8s %9s\n' target seconds executions "exec/s" corpus findings
for t in "${targets[@]}"; do
  binary="$build/fuzz/fuzz_$t"
  [ -x "$binary" ] || { echo "fuzz: no $binary (build it: scripts/sanitize.sh)" >&2; exit 1; }
  [ -d "fuzz/corpus/$t" ] || { echo "fuzz: no seeds in fuzz/corpus/$t" >&2; exit 1; }
  work="$build/fuzz-work/$t" findings="$build/fuzz-findings/$t"
  rm -rf "$findings"
  mkdir -p "$work" "$findings"
  log="$build/fuzz-work/$t.log"
  replay=(fuzz/corpus/$t/*)
  if [ -d "fuzz/regressions/$t" ]; then replay+=(fuzz/regressions/$t/*); fi
  if ! "$binary" -runs=0 "${replay[@]}" >"$log" 2>&1; then
    tail -20 "$log" >&2
    echo "fuzz: $t fails on a committed input (see above)" >&2
    exit 1
  fi
  status=0
  "$binary" "$work" "fuzz/corpus/$t" -max_total_time="$seconds" -seed="$seed" -timeout=10 -rss_limit_mb=4096 -print_final_stats=1 \
    -artifact_prefix="$findings/" >"$log" 2>&1 || status=$?
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  corpus=$(ls "$work" | wc -l)
  found=$(ls "$findings" | wc -l)
  printf '%-20s %8s %12s %10s %8s %9s\n' "$t" "$seconds" "${runs:-?}" "$(( ${runs:-0} / seconds ))" "$corpus" "$found"
  rows+=("{\"target\": \"$t\", \"seconds\": $seconds, \"executions\": ${runs:-0}, \"corpus\": $corpus, \"findings\": $found}")
  if [ "$status" -ne 0 ]; then
    grep -E "finding:|ERROR: |SUMMARY: |runtime error" "$log" | head -5 >&2 || true
    failed+=("$t: $findings/$(ls -t "$findings" | head -1)")
  fi
done
(IFS=,; echo "[${rows[*]}]") >"$report"
echo "fuzz: report in $report" >&2
if [ ${#failed[@]} -gt 0 ]; then
  printf 'fuzz: failing input of %s\n' "${failed[@]}" >&2
  echo "fuzz: fix each, then add its input to fuzz/regressions/TARGET/" >&2
  exit 1
fi
