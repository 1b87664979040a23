#!/usr/bin/env bash
# Builds the English prose corpus for training a C3 from scratch on the CPU (issue 15) in
# data/prose/ (or $1), from documentation that Debian packages install:
#   linux-doc-6.12   the Linux kernel's Documentation/ (reStructuredText sources), GPL-2
#   python3.11-doc   the Python documentation (reStructuredText sources), PSF-2.0
#   perl-doc         Perl's documentation (POD), GPL-1+ or Artistic
# (C3_PROSE_PACKAGES overrides the list). scripts/corpus/clean_docs.py keeps their prose paragraphs,
# drops repeated paragraphs and splits by document into train/ (~95%), valid/ and test/ (~2.5% each).
# About 25 MB. Never the Fox pages. The project ships no corpus; this builds one locally, without
# root (apt-get download + dpkg-deb -x). The folder appears complete or not at all; rerunning is a
# no-op once it exists.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-data/prose}
if [[ -f "$out/manifest.jsonl" ]]; then
  echo "$out already built" >&2
  exit 0
fi
read -r -a packages <<<"${C3_PROSE_PACKAGES:-linux-doc-6.12 python3.11-doc perl-doc}"
tmp=$(mktemp -d "${TMPDIR:-/tmp}/c3-prose.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/debs" "$tmp/root"
if ! (cd "$tmp/debs" && apt-get download "${packages[@]}" >/dev/null 2>&1); then
  echo "build-prose-corpus: cannot download ${packages[*]} (apt-get update first?)" >&2
  exit 1
fi
for deb in "$tmp"/debs/*.deb; do dpkg-deb -x "$deb" "$tmp/root"; done
# Sources named from the package root (usr/share/...), so the split and manifest do not depend on $tmp.
sources=()
while IFS= read -r dir; do sources+=("rst:$dir"); done < <(cd "$tmp/root" && find usr/share/doc -type d -name _sources | sort)
while IFS= read -r dir; do sources+=("pod:$dir"); done < <(cd "$tmp/root" && find usr/share/perl -mindepth 2 -maxdepth 2 -type d -name pod 2>/dev/null | sort)
if (( ${#sources[@]} == 0 )); then
  echo "build-prose-corpus: no documentation sources found in ${packages[*]}" >&2
  exit 1
fi
cleaner=$PWD/scripts/corpus/clean_docs.py
(cd "$tmp/root" && python3 "$cleaner" "$tmp/corpus" "${sources[@]}")
{
  echo "Built by scripts/build-prose-corpus.sh on $(date -u +%Y-%m-%d) from these Debian packages:"
  for deb in "$tmp"/debs/*.deb; do basename "$deb"; done
  echo "Not redistributed by c3. Their copyright files follow."
  for package in "${packages[@]}"; do
    for copyright in "$tmp"/root/usr/share/doc/"$package"/copyright; do
      [[ -f "$copyright" ]] && { echo; echo "=== $package"; cat "$copyright"; }
    done
  done
} > "$tmp/corpus/SOURCE"
mkdir -p "$(dirname "$out")"
rm -rf "$out.partial"
mv "$tmp/corpus" "$out.partial"
mv -T "$out.partial" "$out"
echo "build-prose-corpus: $(ls "$out/train" | wc -l) training, $(ls "$out/valid" | wc -l) validation and" \
  "$(ls "$out/test" | wc -l) test documents ($(du -sh "$out" | cut -f1)) in $out" >&2
