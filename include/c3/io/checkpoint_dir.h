// A Hugging Face checkpoint folder: config.json plus either model.safetensors or shards listed in
// model.safetensors.index.json. Opens (memory-maps) every shard and indexes tensors by name.
// Knows nothing of torch; c3/io/tensor_io.h turns its tensors into LibTorch ones.
#pragma once

#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <unordered_map>
#include <vector>

#include "c3/io/safetensors.h"
#include "c3/util/error.h"

namespace c3::io {

class CheckpointDir {
 public:
  static constexpr const char* kConfigFile = "config.json";
  static constexpr const char* kSingleFile = "model.safetensors";
  static constexpr const char* kIndexFile = "model.safetensors.index.json";

  explicit CheckpointDir(const std::filesystem::path& dir);

  const std::filesystem::path& dir() const { return dir_; }
  std::filesystem::path config_path() const { return dir_ / kConfigFile; }
  const nlohmann::json& config() const { return config_; }

  std::vector<std::string> tensor_names() const;  // sorted
  bool contains(const std::string& name) const { return index_.count(name) > 0; }
  const TensorInfo& tensor(const std::string& name) const;  // throws naming the folder
  const std::filesystem::path& file_of(const std::string& name) const;
  void evict(const std::string& name) const;  // see SafetensorsReader::evict
  std::vector<std::filesystem::path> files() const;

  // Tokenizer files present beside the weights (tokenizer.json, vocab.json, ...).
  std::vector<std::string> tokenizer_files() const;

 private:
  struct Entry {
    const SafetensorsReader* reader;
    const TensorInfo* info;
  };
  std::filesystem::path dir_;
  nlohmann::json config_;
  std::vector<std::unique_ptr<SafetensorsReader>> shards_;
  std::unordered_map<std::string, Entry> index_;
};

// The files a tokenizer may consist of, as they are named inside a checkpoint folder.
const std::vector<std::string>& tokenizer_file_names();

nlohmann::json read_json_file(const std::filesystem::path& path);

// Runs `read`, which takes values out of JSON read from `file`: a value of another type than
// expected (nlohmann's exception) becomes the usual one-line error naming the file.
template <typename Read>
auto with_json_errors(const std::string& file, Read&& read) -> decltype(read()) {
  try {
    return read();
  } catch (const nlohmann::json::exception& e) {
    fail_file(file, std::string("unexpected JSON (") + e.what() + ")");
  }
}

}  // namespace c3::io
