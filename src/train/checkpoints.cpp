#include "c3/train/checkpoints.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <map>

#include "c3/io/checkpoint_dir.h"
#include "c3/io/safetensors.h"
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

void save_training_checkpoint(const fs::path& dir, C3Model& model, const AdamW& optimizer, const TrainingState& state,
                              const fs::path& tokenizer_source) {
  AtomicDirectory out(dir, /*overwrite=*/true);
  write_c3(model, out.staging(), std::nullopt, 5ull << 30);
  if (!tokenizer_source.empty()) copy_tokenizer_files(tokenizer_source, out.staging());
  const fs::path state_dir = out.staging() / kTrainingStateDir;
  fs::create_directories(state_dir);
  write_tensors(state_dir / kOptimizerFile, optimizer.state(), {{"format", "pt"}});
  write_file_atomically(state_dir / kStateFile, state.to_json().dump(2) + "\n");
  out.commit();
}

TrainingState load_training_state(const fs::path& dir, AdamW& optimizer, const at::Device& device) {
  const fs::path state_dir = dir / kTrainingStateDir;
  const fs::path state_file = state_dir / kStateFile;
  TrainingState state = TrainingState::from_json(io::read_json_file(state_file), state_file.string());
  const fs::path optimizer_file = state_dir / kOptimizerFile;
  io::SafetensorsReader reader(optimizer_file);
  std::map<std::string, at::Tensor> tensors;
  for (const auto& info : reader.tensors()) {
    const at::ScalarType type = to_scalar_type(info.dtype, optimizer_file.string());
    tensors[info.name] = load_tensor(info, type, device, optimizer_file.string());
  }
  optimizer.load_state(tensors, state.optimizer_steps, optimizer_file.string());
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
