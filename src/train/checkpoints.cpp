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
#include "c3/util/sha256.h"

namespace fs = std::filesystem;

namespace c3 {
namespace {

constexpr const char* kOptimizerFile = "optimizer.safetensors";
constexpr const char* kManifestFile = "manifest.json";

// Checksums run on LibTorch's pool size (--threads).
int hashing_threads() { return at::get_num_threads(); }

// Every regular file below `dir`, relative to it, sorted.
std::vector<fs::path> files_below(const fs::path& dir) {
  std::vector<fs::path> files;
  for (const auto& entry : fs::recursive_directory_iterator(dir))
    if (entry.is_regular_file()) files.push_back(fs::relative(entry.path(), dir));
  std::sort(files.begin(), files.end());
  return files;
}

// training_state/manifest.json: size and chunked_file_digest of every file written before it.
void write_manifest(const fs::path& dir) {
  const auto files = files_below(dir);
  nlohmann::json entries = nlohmann::json::object();
  for (const auto& file : files)
    entries[file.generic_string()] = {{"bytes", fs::file_size(dir / file)},
                                      {"sha256_of_64MiB_chunks", chunked_file_digest(dir / file, hashing_threads())}};
  const nlohmann::json manifest = {{"format", "c3-checkpoint-manifest"}, {"version", 1}, {"files", entries}};
  write_file_atomically(dir / kTrainingStateDir / kManifestFile, manifest.dump(1) + "\n");
}

// What differs from the manifest ("" when nothing does).
std::string manifest_problem(const fs::path& dir, const nlohmann::json& manifest) {
  if (!manifest.is_object() || !manifest.contains("files") || !manifest["files"].is_object())
    return "training_state/manifest.json is not a c3 checkpoint manifest";
  for (const auto& [name, entry] : manifest["files"].items()) {
    if (name.empty() || name[0] == '/' || name.find("..") != std::string::npos) return "the manifest names " + name;
    const fs::path file = dir / name;
    std::error_code ec;
    const auto bytes = fs::file_size(file, ec);
    if (ec) return name + " is missing";
    if (!entry.is_object() || !entry.contains("bytes") || !entry.contains("sha256_of_64MiB_chunks"))
      return "the manifest's entry for " + name + " is malformed";
    if (entry["bytes"] != bytes)
      return name + " holds " + std::to_string(bytes) + " bytes, not the " + entry["bytes"].dump() +
             " it was saved with";
    if (entry["sha256_of_64MiB_chunks"] != chunked_file_digest(file, hashing_threads()))
      return name + " is not what was saved (its checksum differs)";
  }
  return "";
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
          {"cpu_seconds", cpu_seconds},
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
    s.cpu_seconds = j.value("cpu_seconds", 0.0);  // absent before it was recorded
    s.config = j.value("config", nlohmann::json::object());
  } catch (const nlohmann::json::exception& e) {
    fail_file(source, std::string("bad training state (") + e.what() + ")");
  }
  return s;
}

void save_training_checkpoint(const fs::path& dir, C3Model& model, const AdamW& optimizer, const TrainingState& state,
                              const std::map<std::string, std::string>& tokenizer_files, Communicator& comm) {
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
    const std::string file =
        sharded ? "optimizer-rank-" + std::to_string(comm.rank()) + ".safetensors" : kOptimizerFile;
    io::write_tensors(state_dir / file, optimizer.state(), {{"format", "pt"}});
  }
  if (sharded) comm.barrier();  // all parts are in the staging folder
  if (comm.is_main()) {
    write_c3(model, out->staging(), std::nullopt, 5ull << 30);
    for (const auto& [name, contents] : tokenizer_files) write_file_atomically(out->staging() / name, contents);
    write_manifest(out->staging());
    nlohmann::json j = state.to_json();
    j["world_size"] = comm.world_size();
    j["optimizer_shards"] = optimizer.shard_count();
    write_file_atomically(state_dir / kTrainingStateFile, j.dump(2) + "\n");
    out->commit();
  }
}

TrainingState load_training_state(const fs::path& dir, AdamW& optimizer, const at::Device& device) {
  const fs::path state_dir = dir / kTrainingStateDir;
  const fs::path state_file = state_dir / kTrainingStateFile;
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
    try {
      remove_directory_atomically(all[i]);
    } catch (const Error& e) {
      spdlog::warn("could not remove an old checkpoint: {}", e.what());
    }
  }
}

std::string checkpoint_problem(const fs::path& dir) {
  const fs::path state_file = dir / kTrainingStateDir / kTrainingStateFile;
  const fs::path manifest_file = dir / kTrainingStateDir / kManifestFile;
  std::error_code ec;
  if (!fs::exists(state_file, ec)) return "no training_state/state.json";
  try {
    TrainingState::from_json(io::read_json_file(state_file), state_file.string());
    if (!fs::exists(manifest_file, ec)) return "";  // saved by a c3 that wrote no manifest
    return manifest_problem(dir, io::read_json_file(manifest_file));
  } catch (const Error& e) {
    return e.what();
  }
}

fs::path choose_resume_checkpoint(const fs::path& output) {
  std::vector<fs::path> found = checkpoint_folders(output);
  std::reverse(found.begin(), found.end());               // newest first
  std::vector<std::pair<fs::path, std::string>> damaged;  // newer than the one resumed from
  std::error_code ec;
  for (const auto& dir : found) {
    std::string problem = checkpoint_problem(dir);
    if (!problem.empty()) {
      damaged.emplace_back(dir, std::move(problem));
      continue;
    }
    for (const auto& [bad, why] : damaged) {
      fs::path aside = bad.string() + ".damaged";
      for (int n = 2; fs::exists(aside, ec); ++n) aside = bad.string() + ".damaged-" + std::to_string(n);
      fs::rename(bad, aside, ec);
      if (ec) fail_file(bad.string(), "damaged (" + why + ") and cannot be moved aside: " + ec.message());
      spdlog::warn("{}: damaged ({}); moved to {}", bad.string(), why, aside.filename().string());
    }
    if (!damaged.empty()) spdlog::warn("resuming from {}, the newest intact checkpoint", dir.string());
    return dir;
  }
  if (!damaged.empty())
    fail_file(damaged.front().first.string(), "damaged (" + damaged.front().second +
                                                  "), and no older checkpoint is intact: nothing to resume from "
                                                  "(remove the run's checkpoints to start over)");
  return {};
}

}  // namespace c3
