// SHA-256 (FIPS 180-4), for content fingerprints (source files, models) in latent files and the
// checksums of training checkpoints.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>

namespace c3 {

class Sha256 {
 public:
  Sha256();
  void update(const void* data, std::size_t size);
  void update(std::string_view text) { update(text.data(), text.size()); }
  std::string hex();  // finishes the hash; lowercase hex

 private:
  void block(const std::uint8_t* chunk);
  std::array<std::uint32_t, 8> state_;
  std::array<std::uint8_t, 64> buffer_{};
  std::size_t buffered_ = 0;
  std::uint64_t total_ = 0;
};

std::string sha256_hex(std::string_view data);

// A file's digest that `threads` threads compute together (checkpoints run to tens of GB): SHA-256
// over the SHA-256 digests of its 64 MiB chunks, in order. Errors name the file.
std::string chunked_file_digest(const std::filesystem::path& path, int threads);

}  // namespace c3
