// What every fuzz target shares. Parsers of outside input may end in one way only on bad input:
// a c3::Error (the one-line message that names the file). Any other exception, a crash, a hang or
// a sanitizer report is a finding. Most parsers read files, so the input is written to one first.
#pragma once

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <string_view>
#include <typeinfo>
#include <utility>

#include "c3/util/error.h"

namespace c3::fuzz {

// A scratch folder of this process (under $TMPDIR), removed at exit.
const std::filesystem::path& scratch();

// Writes `bytes` to `name` in scratch(); returns its path.
std::filesystem::path write_input(const std::string& name, std::string_view bytes);

// The input as text, and split at its first NUL byte (several files in one input; the seeds
// hold them as FILE1 \0 FILE2).
inline std::string_view as_text(const std::uint8_t* data, std::size_t size) {
  return {reinterpret_cast<const char*>(data), size};
}
std::pair<std::string_view, std::string_view> split_at_nul(std::string_view input);

// Runs `f`: a c3::Error is the expected end of bad input; anything else aborts with its type.
template <typename F>
void expect_only_c3_errors(F&& f) {
  try {
    f();
  } catch (const c3::Error&) {
  } catch (const std::exception& e) {
    std::fprintf(stderr, "finding: %s escaped instead of c3::Error: %s\n", typeid(e).name(), e.what());
    std::abort();
  } catch (...) {
    std::fprintf(stderr, "finding: a non-std exception escaped\n");
    std::abort();
  }
}

// Aborts with `what` unless `ok` (a property of valid input that failed).
inline void require(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "finding: %s\n", what);
    std::abort();
  }
}

}  // namespace c3::fuzz
