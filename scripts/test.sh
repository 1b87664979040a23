#!/usr/bin/env bash
# The whole test suite: build, compile-check against LibTorch 2.x headers, run every test.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/build.sh
build=${BUILD_DIR:-build}
# The 2.x headers come from Debian's archive; if it cannot be reached the check is reported as
# not run (exit 3) instead of failing the suite. A source that does not compile fails it.
status=0
bash scripts/check-libtorch2.sh || status=$?
case $status in
  0) ;;
  3) echo "test.sh: WARNING: LibTorch 2.x compile check NOT run (headers unavailable)" >&2 ;;
  *) exit "$status" ;;
esac
ctest --test-dir "$build" --output-on-failure -j "$(nproc)"
