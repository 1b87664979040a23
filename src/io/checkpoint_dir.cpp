#include "c3/io/checkpoint_dir.h"

#include <algorithm>
#include <map>

#include "c3/util/atomic_file.h"
#include "c3/util/error.h"

namespace fs = std::filesystem;
using nlohmann::json;

namespace c3::io {

json read_json_file(const fs::path& path) {
  const std::string text = read_text_file(path, kMaxMetadataFileBytes);
  try {
    return json::parse(text);
  } catch (const json::exception& e) {
    fail_file(path.string(), std::string("invalid JSON (") + e.what() + ")");
  }
}

CheckpointDir::CheckpointDir(const fs::path& dir) : dir_(dir) {
  std::error_code ec;
  if (!fs::is_directory(dir_, ec))
    fail_file(dir_.string(), fs::exists(dir_, ec)
                                 ? "is a file; a checkpoint is the folder that holds config.json and the weights"
                                 : "not a checkpoint folder (no such folder)");
  if (!fs::exists(config_path(), ec))
    fail_file(config_path().string(), "missing: a checkpoint folder needs config.json");
  config_ = read_json_file(config_path());
  if (!config_.is_object()) fail_file(config_path().string(), "is not a JSON object");

  std::vector<fs::path> shard_files;
  std::map<std::string, std::string> weight_map;  // from the index, when sharded
  const fs::path index_path = dir_ / kIndexFile;
  if (fs::exists(dir_ / kSingleFile, ec)) {
    shard_files.push_back(dir_ / kSingleFile);
  } else if (fs::exists(index_path, ec)) {
    const json index = read_json_file(index_path);
    if (!index.is_object() || !index.contains("weight_map") || !index["weight_map"].is_object())
      fail_file(index_path.string(), "has no 'weight_map' object");
    for (auto it = index["weight_map"].begin(); it != index["weight_map"].end(); ++it) {
      if (!it.value().is_string())
        fail_file(index_path.string(), "weight_map entry '" + it.key() + "' is not a file name");
      const std::string file = it.value().get<std::string>();
      if (file.find('/') != std::string::npos || file == "..")
        fail_file(index_path.string(), "weight_map names a file outside the folder: '" + file + "'");
      weight_map[it.key()] = file;
      if (std::find(shard_files.begin(), shard_files.end(), dir_ / file) == shard_files.end())
        shard_files.push_back(dir_ / file);
    }
    std::sort(shard_files.begin(), shard_files.end());
    for (const auto& f : shard_files)
      if (!fs::exists(f, ec)) fail_file(f.string(), "missing: listed in " + std::string(kIndexFile));
  } else {
    fail_file(dir_.string(), std::string("no weights: expected ") + kSingleFile + " or " + kIndexFile);
  }

  for (const auto& f : shard_files) {
    shards_.push_back(std::make_unique<SafetensorsReader>(f));
    const SafetensorsReader& reader = *shards_.back();
    for (const auto& t : reader.tensors()) {
      if (!weight_map.empty()) {
        auto it = weight_map.find(t.name);
        if (it == weight_map.end() || dir_ / it->second != f) continue;  // the index decides
      }
      if (index_.count(t.name))
        fail_file(f.string(), "tensor '" + t.name + "' is also stored in " + index_[t.name].reader->path().string());
      index_[t.name] = Entry{&reader, &t};
    }
  }
  for (const auto& [name, file] : weight_map) {
    if (!index_.count(name))
      fail_file((dir_ / file).string(),
                "has no tensor '" + name + "' although " + std::string(kIndexFile) + " says so");
  }
}

std::vector<std::string> CheckpointDir::tensor_names() const {
  std::vector<std::string> names;
  names.reserve(index_.size());
  for (const auto& [name, entry] : index_) names.push_back(name);
  std::sort(names.begin(), names.end());
  return names;
}

const TensorInfo& CheckpointDir::tensor(const std::string& name) const {
  auto it = index_.find(name);
  if (it == index_.end()) fail_file(dir_.string(), "missing tensor '" + name + "'");
  return *it->second.info;
}

const fs::path& CheckpointDir::file_of(const std::string& name) const {
  auto it = index_.find(name);
  if (it == index_.end()) fail_file(dir_.string(), "missing tensor '" + name + "'");
  return it->second.reader->path();
}

void CheckpointDir::evict(const std::string& name) const {
  auto it = index_.find(name);
  if (it != index_.end()) it->second.reader->evict(*it->second.info);
}

std::vector<fs::path> CheckpointDir::files() const {
  std::vector<fs::path> out;
  for (const auto& s : shards_) out.push_back(s->path());
  return out;
}

const std::vector<std::string>& tokenizer_file_names() {
  static const std::vector<std::string> names{
      "tokenizer.json",          "vocab.json",    "merges.txt",      "added_tokens.json", "tokenizer_config.json",
      "special_tokens_map.json", "qwen.tiktoken", "tokenizer.model", "tokenizer.vocab"};
  return names;
}

std::vector<std::string> CheckpointDir::tokenizer_files() const {
  std::vector<std::string> found;
  std::error_code ec;
  for (const std::string& name : tokenizer_file_names())
    if (fs::exists(dir_ / name, ec)) found.emplace_back(name);
  return found;
}

}  // namespace c3::io
