# Sourced by scripts/sanitize.sh and scripts/fuzz.sh: how the sanitized binaries run.
# LibTorch (not instrumented) keeps a few allocations for the life of the process; they are
# listed in scripts/lsan-suppressions.txt, so that LeakSanitizer reports leaks in c3's own code.
# container-overflow needs every library instrumented (LibTorch is not).
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
export ASAN_OPTIONS="detect_leaks=1:detect_container_overflow=0:abort_on_error=1:strict_string_checks=1:check_initialization_order=1"
export LSAN_OPTIONS="suppressions=$here/lsan-suppressions.txt:print_suppressions=0"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
export ASAN_SYMBOLIZER_PATH="$(command -v llvm-symbolizer || true)"
