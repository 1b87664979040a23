#include "fuzz_support.h"

#include <unistd.h>

#include <fstream>

namespace c3::fuzz {

namespace {

struct Scratch {
  std::filesystem::path path;
  Scratch() {
    path = std::filesystem::temp_directory_path() / ("c3-fuzz-" + std::to_string(::getpid()));
    std::filesystem::create_directories(path);
  }
  ~Scratch() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
};

}  // namespace

const std::filesystem::path& scratch() {
  static const Scratch s;
  return s.path;
}

std::filesystem::path write_input(const std::string& name, std::string_view bytes) {
  const auto path = scratch() / name;
  std::filesystem::create_directories(path.parent_path());
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  return path;
}

std::pair<std::string_view, std::string_view> split_at_nul(std::string_view input) {
  const size_t at = input.find('\0');
  if (at == std::string_view::npos) return {input, {}};
  return {input.substr(0, at), input.substr(at + 1)};
}

}  // namespace c3::fuzz
