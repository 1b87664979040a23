#!/usr/bin/env bash
# The sanitizer stage CI runs after the test suite: builds c3 with clang, AddressSanitizer and
# UndefinedBehaviorSanitizer (plus libFuzzer's coverage) into ${SANITIZE_BUILD_DIR:-build-sanitize},
# runs the library's unit tests under them (the CLI tests, which drive the c3 binary for minutes,
# stay in scripts/test.sh), then every fuzz target: its regression inputs and seeds first, then
# C3_FUZZ_SECONDS (default 20) of fuzzing each (scripts/fuzz.sh), from a fixed seed so that CI
# explores the same inputs on every run (fuzz.sh alone draws a new seed each time).
#   Fuzz one target longer: scripts/fuzz.sh --seconds 3600 safetensors
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh clang libclang-rt-14-dev llvm
build=${SANITIZE_BUILD_DIR:-build-sanitize}
start=$SECONDS
unit_tests=(test_util test_io test_tokenizer test_data test_eval test_infer test_model test_train)
BUILD_DIR=$build BUILD_TARGETS="${unit_tests[*]} $(cd fuzz/corpus && ls | sed 's/^/fuzz_/' | tr '\n' ' ')" \
  bash scripts/build.sh -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_COMPILER=clang++ \
  -DC3_SANITIZE=address,undefined -DC3_BUILD_FUZZ=ON -DC3_BUILD_BENCH=OFF
echo "sanitize: built in $((SECONDS - start)) s" >&2
source scripts/sanitizer-env.sh
start=$SECONDS
for t in "${unit_tests[@]}"; do
  echo "sanitize: $t under ASan + UBSan" >&2
  "$build/tests/$t" --gtest_brief=1 --gtest_filter='-*cuda*:*Cuda*:*CUDA*'
done
echo "sanitize: unit tests passed in $((SECONDS - start)) s" >&2
BUILD_DIR=$build bash scripts/fuzz.sh --seconds "${C3_FUZZ_SECONDS:-20}" --seed 1
