// The safetensors format (Hugging Face): 8-byte little-endian header length N, N bytes of JSON
// ({"name": {"dtype", "shape", "data_offsets": [begin, end]}, "__metadata__": {str: str}}), then
// the data. This layer knows bytes only; torch conversions live in c3/io/tensor_io.h.
#pragma once

#include "c3/io/mapped_file.h"

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace c3::io {

enum class DType { BOOL, U8, I8, I16, U16, F16, BF16, I32, U32, F32, F64, I64, U64 };

std::size_t dtype_size(DType dtype);
std::string_view dtype_name(DType dtype);                 // "F32", "BF16", ...
std::optional<DType> parse_dtype(std::string_view name);  // inverse of dtype_name

struct TensorInfo {
  std::string name;
  DType dtype = DType::F32;
  std::vector<int64_t> shape;
  std::size_t begin = 0;  // byte offsets into the data section
  std::size_t end = 0;
  const std::uint8_t* data = nullptr;  // points into the reader's mapping

  std::size_t nbytes() const { return end - begin; }
  int64_t numel() const;
};

std::string shape_string(const std::vector<int64_t>& shape);  // "[2, 3]"

// Memory-maps a file and validates it completely before exposing anything: header size cap,
// JSON shape, known dtypes, offsets in bounds, contiguous and non-overlapping, byte size equal to
// elements x dtype size, unique names. Every failure throws c3::Error naming the file.
class SafetensorsReader {
 public:
  static constexpr std::uint64_t kMaxHeaderBytes = 100ull << 20;  // same cap as the Python library

  explicit SafetensorsReader(const std::filesystem::path& path);
  ~SafetensorsReader();
  SafetensorsReader(const SafetensorsReader&) = delete;
  SafetensorsReader& operator=(const SafetensorsReader&) = delete;

  const std::filesystem::path& path() const { return path_; }
  const std::vector<TensorInfo>& tensors() const { return tensors_; }  // in data order
  const std::map<std::string, std::string>& metadata() const { return metadata_; }
  const TensorInfo* find(const std::string& name) const;
  const TensorInfo& at(const std::string& name) const;  // throws naming the file
  // Lets the kernel drop the pages holding `tensor` from memory once it has been copied out; the
  // data stays valid (an unmodified private mapping re-reads the file on the next access).
  void evict(const TensorInfo& tensor) const;

 private:
  std::filesystem::path path_;
  MappedFile file_;
  std::vector<TensorInfo> tensors_;
  std::unordered_map<std::string, std::size_t> index_;
  std::map<std::string, std::string> metadata_;
};

// Validates a complete file image held in memory (the reader uses it on its mapping).
struct ParsedSafetensors {
  std::vector<TensorInfo> tensors;
  std::map<std::string, std::string> metadata;
};
ParsedSafetensors parse_safetensors(const std::uint8_t* bytes, std::size_t size, const std::string& source);

struct TensorBytes {
  std::string name;
  DType dtype = DType::F32;
  std::vector<int64_t> shape;
  const void* data = nullptr;
  std::size_t nbytes = 0;
};

// The header the reference (Rust/Python) writer produces for these tensors: "__metadata__" first,
// then tensors sorted by dtype (widest first) and name, compact JSON padded with spaces to a
// multiple of 8. Returns the padded header; `order` receives the data order.
std::string safetensors_header(const std::vector<TensorBytes>& tensors,
                               const std::map<std::string, std::string>& metadata, std::vector<std::size_t>* order);

// Writes atomically (temporary file, fsync, rename).
void write_safetensors(const std::filesystem::path& path, const std::vector<TensorBytes>& tensors,
                       const std::map<std::string, std::string>& metadata = {});

}  // namespace c3::io
