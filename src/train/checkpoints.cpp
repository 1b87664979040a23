#include "c3/train/checkpoints.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <map>
#include <optional>
#include <set>

#include "c3/io/checkpoint_dir.h"
#include "c3/io/safetensors.h"
#include "c3/io/tensor_io.h"
#include "c3/model/c3_io.h"
#include "c3/tokenizer/tokenizer.h"
#include "c3/util/atomic_file.h"
#include "c3/util/error.h"

namespace fs = std::filesystem;

namespace c3 {
namespace {

constexpr const char* kStateFile = "state.json";
constexpr const char* kOptimizerFile = "optimizer.safetensors";
constexpr const char* kPrefix = "checkpoint-";

std::optional<int64_t> step_of(const fs::path& dir) {
  const std::string name = dir.filename().string();
  if (name.rfind(kPrefix, 0) != 0) return std::nullopt;
  const std::string digits = name.substr(std::string(kPrefix).size());
  if (digits.empty() || digits.find_first_not_of("0123456789") != std::string::npos) return std::nullopt;
  return std::stoll(digits);
}

}  // namespace

nlohmann::json TrainingState::to_json() const {
  return {{"step", step},
          {"optimizer_steps", optimizer_steps},
          {"consumed_samples", consumed},
          {"bad_steps_in_row", bad_steps_in_row},
          {"skipped_steps", skipped_steps},
          {"tokens_seen", tokens_seen},
          {"elapsed_seconds", elapsed_seconds},
          {"config", config}};
}

TrainingState TrainingState::from_json(const nlohmann::json& j, const std::string& source) {
  TrainingState s;
  try {
    s.step = j.at("step").get<int64_t>();
    s.optimizer_steps = j.at("optimizer_steps").get<int64_t>();
    s.consumed = j.at("consumed_samples").get<int64_t>();
    s.bad_steps_in_row = j.at("bad_steps_in_row").get<int64_t>();
    s.skipped_steps = j.at("skipped_steps").get<int64_t>();
    s.tokens_seen = j.at("tokens_seen").get<int64_t>();
    s.elapsed_seconds = j.at("elapsed_seconds").get<double>();
    s.config = j.value("config", nlohmann::json::object());
  } catch (const nlohmann::json::exception& e) {
    fail_file(source, std::string("bad training state (") + e.what() + ")");
  }
  return s;
}

fs::path checkpoint_path(const fs::path& output, int64_t step) { return output / (kPrefix + std::to_string(step)); }

std::vector<fs::path> list_checkpoints(const fs::path& output) {
  std::vector<std::pair<int64_t, fs::path>> found;
  std::error_code ec;
  if (!fs::is_directory(output, ec)) return {};
  for (const auto& entry : fs::directory_iterator(output, ec)) {
    auto step = step_of(entry.path());
    if (step && fs::exists(entry.path() / kTrainingStateDir / kStateFile, ec)) found.emplace_back(*step, entry.path());
  }
  std::sort(found.begin(), found.end());
  std::vector<fs::path> out;
  for (auto& [step, path] : found) out.push_back(path);
  return out;
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
  fail_file(config.string(), "not a C3 model (model_type \"" + type + "\")" +
                                 (type == "qwen2" ? ": a plain Qwen2 model, which c3 train takes as --encoder or --decoder"
                                                  : ""));
}

void save_training_checkpoint(const fs::path& dir, C3Model& model, const AdamW& optimizer, const TrainingState& state,
                              const fs::path& tokenizer_source, Communicator& comm) {
  std::optional<AtomicDirectory> out;
  std::string staging;
  if (comm.is_main()) out.emplace(dir, /*overwrite=*/true), staging = out->staging().string();
  const bool sharded = optimizer.shard_count() > 1;
  if (sharded) staging = comm.broadcast_string(staging);  // every rank writes its part there
  const fs::path state_dir = fs::path(staging) / kTrainingStateDir;
  if (sharded || comm.is_main()) {
    std::error_code ec;
    fs::create_directories(state_dir, ec);
    if (ec) fail_file(state_dir.string(), "cannot create folder: " + ec.message());
    const std::string file = sharded ? "optimizer-rank-" + std::to_string(comm.rank()) + ".safetensors" : kOptimizerFile;
    io::write_tensors(state_dir / file, optimizer.state(), {{"format", "pt"}});
  }
  if (sharded) comm.barrier();  // all parts are in the staging folder
  if (comm.is_main()) {
    write_c3(model, out->staging(), std::nullopt, 5ull << 30);
    if (!tokenizer_source.empty()) copy_tokenizer_files(tokenizer_source, out->staging());
    nlohmann::json j = state.to_json();
    j["world_size"] = comm.world_size();
    j["optimizer_shards"] = optimizer.shard_count();
    write_file_atomically(state_dir / kStateFile, j.dump(2) + "\n");
    out->commit();
  }
}

TrainingState load_training_state(const fs::path& dir, AdamW& optimizer, const at::Device& device) {
  const fs::path state_dir = dir / kTrainingStateDir;
  const fs::path state_file = state_dir / kStateFile;
  TrainingState state = TrainingState::from_json(io::read_json_file(state_file), state_file.string());
  // optimizer.safetensors, or the optimizer-rank-R.safetensors parts of a sharded run.
  std::vector<fs::path> files;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(state_dir, ec)) {
    const std::string name = entry.path().filename().string();
    if (name == kOptimizerFile || (name.rfind("optimizer-rank-", 0) == 0 && entry.path().extension() == ".safetensors"))
      files.push_back(entry.path());
  }
  std::sort(files.begin(), files.end());
  if (files.empty()) fail_file(state_dir.string(), "holds no optimizer state (optimizer*.safetensors)");
  const auto wanted_names = optimizer.state_names();
  const std::set<std::string> wanted(wanted_names.begin(), wanted_names.end());
  std::map<std::string, at::Tensor> tensors;
  for (const auto& file : files) {
    io::SafetensorsReader reader(file);
    for (const auto& info : reader.tensors()) {
      if (!wanted.count(info.name)) continue;
      const at::ScalarType type = io::to_scalar_type(info.dtype, file.string());
      tensors[info.name] = io::load_tensor(info, type, device, file.string());
    }
  }
  optimizer.load_state(tensors, state.optimizer_steps, (files.size() == 1 ? files[0] : state_dir).string());
  return state;
}

void prune_checkpoints(const fs::path& output, int64_t keep) {
  if (keep <= 0) return;
  auto all = list_checkpoints(output);
  for (size_t i = 0; i + static_cast<size_t>(keep) < all.size(); ++i) {
    std::error_code ec;
    fs::remove_all(all[i], ec);
    if (ec) spdlog::warn("{}: could not remove old checkpoint: {}", all[i].string(), ec.message());
  }
}

}  // namespace c3
