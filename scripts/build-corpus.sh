#!/usr/bin/env bash
# Builds the demo training corpus in data/corpus/ (or $1) from text that a Debian documentation
# package installs: "C++ Annotations" by Frank B. Brokken (package c++-annotations-txt, GPL-2+,
# about 2.5 MB of English prose and code). The project ships no corpus; this builds one locally.
#   data/corpus/train/part-NNNN.txt   80-line documents (the trainer cuts them into samples)
#   data/corpus/valid/part-NNNN.txt   every 20th document, held out
#   data/corpus/SOURCE                provenance and the package's copyright file
# The folder appears complete or not at all; rerunning is a no-op once it exists.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-data/corpus}
if [[ -d "$out/train" && -d "$out/valid" ]]; then
  echo "$out already built" >&2
  exit 0
fi
tmp=$(mktemp -d "${TMPDIR:-/tmp}/c3-corpus.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
installed=/usr/share/doc/c++-annotations/cplusplus.txt.gz
if [[ -f "$installed" ]]; then
  source_gz=$installed
  copyright=/usr/share/doc/c++-annotations-txt/copyright
else
  # No root needed: fetch the package file and unpack it privately.
  if ! (cd "$tmp" && apt-get download c++-annotations-txt >/dev/null 2>&1); then
    echo "build-corpus: cannot download the Debian package c++-annotations-txt (run scripts/install-deps.sh, or apt-get update)" >&2
    exit 1
  fi
  dpkg-deb -x "$tmp"/c++-annotations-txt_*.deb "$tmp/pkg"
  source_gz=$tmp/pkg/usr/share/doc/c++-annotations/cplusplus.txt.gz
  copyright=$tmp/pkg/usr/share/doc/c++-annotations-txt/copyright
fi
mkdir -p "$tmp/corpus/train" "$tmp/corpus/valid"
zcat "$source_gz" > "$tmp/cplusplus.txt"
split -l 80 -d -a 4 --additional-suffix=.txt "$tmp/cplusplus.txt" "$tmp/corpus/train/part-"
for file in "$tmp"/corpus/train/part-*.txt; do
  number=$(basename "$file" .txt)
  number=$((10#${number#part-}))
  if (( number % 20 == 0 )); then mv "$file" "$tmp/corpus/valid/"; fi
done
{
  echo "Built by scripts/build-corpus.sh on $(date -u +%Y-%m-%d) from $source_gz"
  echo "(Debian package c++-annotations-txt). Not redistributed by c3. Its copyright file:"
  echo
  cat "$copyright"
} > "$tmp/corpus/SOURCE"
mkdir -p "$(dirname "$out")"
rm -rf "$out.partial"
mv "$tmp/corpus" "$out.partial"
mv -T "$out.partial" "$out"
echo "build-corpus: $(ls "$out/train" | wc -l) training and $(ls "$out/valid" | wc -l) validation documents in $out" >&2
