// Errors a user can act on. Every message is one line that names the file (when there is one)
// and the problem; the CLI prints it and exits non-zero (Error -> 1, UsageError -> 2).
#pragma once

#include <stdexcept>
#include <string>

namespace c3 {

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& message) : std::runtime_error(message) {}
};

// A problem with how the program was invoked: options, config keys, config files.
class UsageError : public Error {
 public:
  explicit UsageError(const std::string& message) : Error(message) {}
};

// "FILE: PROBLEM", the one shape every file error takes.
[[noreturn]] void fail_file(const std::string& file, const std::string& problem);

}  // namespace c3
