#include "c3/model/run_folder.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <optional>

#include "c3/io/checkpoint_dir.h"
#include "c3/model/c3_io.h"
#include "c3/util/error.h"

namespace fs = std::filesystem;

namespace c3 {
namespace {

constexpr const char* kPrefix = "checkpoint-";

std::optional<int64_t> step_of(const fs::path& dir) {
  const std::string name = dir.filename().string();
  if (name.rfind(kPrefix, 0) != 0) return std::nullopt;
  const std::string digits = name.substr(std::string(kPrefix).size());
  if (digits.empty() || digits.find_first_not_of("0123456789") != std::string::npos) return std::nullopt;
  return std::stoll(digits);
}

}  // namespace

std::vector<fs::path> checkpoint_folders(const fs::path& output) {
  std::vector<std::pair<int64_t, fs::path>> found;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(output, ec))
    if (const auto step = step_of(entry.path()); step && entry.is_directory(ec))
      found.emplace_back(*step, entry.path());
  std::sort(found.begin(), found.end());
  std::vector<fs::path> folders;
  for (auto& [step, path] : found) folders.push_back(path);
  return folders;
}

fs::path checkpoint_path(const fs::path& output, int64_t step) { return output / (kPrefix + std::to_string(step)); }

std::vector<fs::path> list_checkpoints(const fs::path& output) {
  std::vector<fs::path> complete;
  std::error_code ec;
  for (const auto& dir : checkpoint_folders(output))
    if (fs::exists(dir / kTrainingStateDir / kTrainingStateFile, ec)) complete.push_back(dir);
  return complete;
}

fs::path newest_checkpoint_of_run(const fs::path& path) {
  std::error_code ec;
  if (fs::exists(path / io::CheckpointDir::kConfigFile, ec)) return path;
  const auto saved = list_checkpoints(path);
  if (saved.empty()) return path;
  spdlog::info("{} is a training run: using its newest checkpoint, {}", path.string(), saved.back().string());
  return saved.back();
}

fs::path resolve_c3_checkpoint(const fs::path& path) {
  std::error_code ec;
  if (!fs::exists(path, ec)) fail_file(path.string(), "no such folder");
  if (!fs::is_directory(path, ec))
    fail_file(path.string(), "is a file; a C3 model is the folder that holds config.json, the weights and llm1/ (" +
                                 (path.has_parent_path() ? path.parent_path().string() : std::string(".")) + "?)");
  if (is_c3_checkpoint(path)) return path;
  if (const fs::path newest = newest_checkpoint_of_run(path); newest != path) return newest;
  const fs::path config = path / io::CheckpointDir::kConfigFile;
  if (!fs::exists(config, ec))
    fail_file(path.string(), "not a C3 model (no config.json, and no checkpoint-N folders of a training run)");
  const auto json = io::read_json_file(config);
  const std::string type = json.is_object() ? json.value("model_type", std::string("(none)")) : "(none)";
  fail_file(config.string(),
            "not a C3 model (model_type \"" + type + "\")" +
                (type == "qwen2" ? ": a plain Qwen2 model, which c3 train takes as --encoder or --decoder" : ""));
}

}  // namespace c3
