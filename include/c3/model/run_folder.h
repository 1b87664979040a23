// A training run's output folder as inference and training both read it: OUTPUT/checkpoint-STEP/
// folders, each a complete C3 model once its training_state/state.json exists (train/checkpoints.h
// writes them), and the newest of them standing for the run wherever a model is expected.
#pragma once

#include <cstdint>
#include <filesystem>
#include <vector>

namespace c3 {

inline constexpr const char* kTrainingStateDir = "training_state";
inline constexpr const char* kTrainingStateFile = "state.json";  // in kTrainingStateDir: written last

std::filesystem::path checkpoint_path(const std::filesystem::path& output, int64_t step);

// Every checkpoint-N folder of `output` (complete or not), oldest first.
std::vector<std::filesystem::path> checkpoint_folders(const std::filesystem::path& output);

// Complete checkpoints in `output`, oldest first.
std::vector<std::filesystem::path> list_checkpoints(const std::filesystem::path& output);

// A training output folder (no config.json, checkpoint-N folders) stands for its newest checkpoint,
// said in the log; any other path is returned as it is.
std::filesystem::path newest_checkpoint_of_run(const std::filesystem::path& path);

// What a user may give where a C3 model is expected: a C3 checkpoint folder, or a training output
// folder, which stands for its newest checkpoint. Anything else is an error that says what it is:
// a missing path, a file (the weights, config.json), a plain Qwen2 model, a folder with no model.
std::filesystem::path resolve_c3_checkpoint(const std::filesystem::path& path);

}  // namespace c3
