// A file memory-mapped read-only (private), for the readers of large binary formats (safetensors,
// GGUF): the bytes are paged in as they are read, and unmapped when the object goes.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>

namespace c3::io {

class MappedFile {
 public:
  // Errors (missing, not a regular file, cannot map) name the file.
  explicit MappedFile(const std::filesystem::path& path);
  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  const std::uint8_t* data() const { return static_cast<const std::uint8_t*>(map_); }  // null for an empty file
  std::size_t size() const { return size_; }
  // Lets the kernel drop the whole pages of [begin, begin + bytes) from memory; they are re-read
  // from the file on the next access.
  void evict(const std::uint8_t* begin, std::size_t bytes) const;

 private:
  void* map_ = nullptr;
  std::size_t size_ = 0;
};

}  // namespace c3::io
