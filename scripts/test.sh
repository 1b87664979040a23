#!/usr/bin/env bash
# The whole test suite, what CI runs: installs what is missing, builds (scripts/build.sh), then runs
# every test with CTest: the C++ unit and CLI tests and the Hugging Face parity tests (tests/hf/),
# which must run here (C3_REQUIRE_HF_TESTS: a missing reference environment fails instead of skipping).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/build.sh
build=${BUILD_DIR:-build}
C3_REQUIRE_HF_TESTS=1 ctest --test-dir "$build" --output-on-failure -j "$(nproc)"
