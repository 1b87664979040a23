// GGUF (versions 2 and 3), the format llama.cpp and most local models are published in: a reader
// that validates the whole layout before anything uses it (every count, string, array and tensor
// extent checked against the file), and the dequantization of the tensor types published models
// use, computed as gguf-py's numpy code does (so the values equal transformers' GGUF loader's).
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include <torch/torch.h>
#include <nlohmann/json.hpp>

#include "c3/io/mapped_file.h"

namespace c3::io {

// ggml's tensor types (ggml.h's enum ggml_type), the ones c3 names.
enum class GgmlType : std::uint32_t {
  F32 = 0,
  F16 = 1,
  Q4_0 = 2,
  Q4_1 = 3,
  Q5_0 = 6,
  Q5_1 = 7,
  Q8_0 = 8,
  Q8_1 = 9,
  Q2_K = 10,
  Q3_K = 11,
  Q4_K = 12,
  Q5_K = 13,
  Q6_K = 14,
  Q8_K = 15,
  BF16 = 30,
};
std::string ggml_type_name(std::uint32_t type);  // "Q4_K"; "type 99" for one c3 does not know
bool can_dequantize(std::uint32_t type);         // F32 F16 BF16 Q8_0 Q4_0 Q4_1 Q5_0 Q5_1 Q4_K Q5_K Q6_K

struct GgufTensor {
  std::string name;
  std::uint32_t type = 0;
  std::vector<int64_t> shape;  // as PyTorch sees it: ggml's dimensions reversed (ne[0] last)
  std::size_t nbytes = 0;
  const std::uint8_t* data = nullptr;  // points into the reader's mapping
  int64_t numel() const;
};

struct ParsedGguf {
  std::uint32_t version = 0;
  nlohmann::json metadata = nlohmann::json::object();  // key -> value (numbers, strings, bools, arrays)
  std::vector<GgufTensor> tensors;                     // in file order
};

// Parses and validates a GGUF file held in memory; errors name `source` and the problem.
ParsedGguf parse_gguf(const std::uint8_t* data, std::size_t size, const std::string& source);

class GgufReader {
 public:
  explicit GgufReader(const std::filesystem::path& path);  // memory-maps and parses
  ~GgufReader();
  GgufReader(const GgufReader&) = delete;
  GgufReader& operator=(const GgufReader&) = delete;

  const std::filesystem::path& path() const { return path_; }
  std::uint32_t version() const { return parsed_.version; }
  const nlohmann::json& metadata() const { return parsed_.metadata; }
  const std::vector<GgufTensor>& tensors() const { return parsed_.tensors; }
  const GgufTensor* find(const std::string& name) const;

 private:
  std::filesystem::path path_;
  MappedFile file_;
  ParsedGguf parsed_;
  std::map<std::string, std::size_t> index_;
};

// The tensor's values as float32 in its PyTorch shape. Errors name `source`, the tensor and its
// type when c3 cannot dequantize it.
at::Tensor dequantize(const GgufTensor& tensor, const std::string& source);

}  // namespace c3::io
