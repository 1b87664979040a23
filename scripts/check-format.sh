#!/usr/bin/env bash
# The C++ sources follow .clang-format (clang-format from Debian, scripts/install-deps.sh):
#   scripts/check-format.sh          lists the files that do not, exit 1 when any (the suite runs this)
#   scripts/check-format.sh --fix    reformats them in place
set -euo pipefail
cd "$(dirname "$0")/.."
command -v clang-format >/dev/null || { echo "check-format.sh: clang-format is not installed (scripts/install-deps.sh)" >&2; exit 1; }
# Tracked files and new ones not yet added (not ignored): what the next commit would hold.
mapfile -t files < <(git ls-files --cached --others --exclude-standard '*.cpp' '*.h' ':!:build*' ':!:.venv')
bad=()
for f in "${files[@]}"; do
  clang-format --dry-run --Werror "$f" >/dev/null 2>&1 || bad+=("$f")
done
if [[ ${1:-} == --fix ]]; then  # only the files that change: the others keep their times (no rebuild)
  (( ${#bad[@]} )) && clang-format -i "${bad[@]}"
  echo "check-format.sh: reformatted ${#bad[@]} files"
  exit 0
fi
if (( ${#bad[@]} )); then
  printf 'check-format.sh: %s does not follow .clang-format (scripts/check-format.sh --fix)\n' "${bad[@]}" >&2
  exit 1
fi
echo "check-format.sh: ${#files[@]} files follow .clang-format"
