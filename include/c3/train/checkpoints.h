// Training checkpoints in an output folder: OUTPUT/checkpoint-STEP/ is a complete C3 model in the
// released layout (loadable by c3 and by the authors' code) plus training_state/ (optimizer
// moments and fp32 master weights, step, data position, resolved config). Each folder is written
// under a hidden name and renamed into place, so one that exists is complete; its
// training_state/manifest.json records every file's size and digest, so a checkpoint damaged
// afterwards (a truncated copy, a bad disk) is recognised before a run resumes from it.
#pragma once

#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "c3/model/c3_model.h"
#include "c3/model/run_folder.h"
#include "c3/train/communicator.h"
#include "c3/train/optimizer.h"

namespace c3 {

struct TrainingState {
  int64_t step = 0;              // completed training steps (updates and skipped ones)
  int64_t optimizer_steps = 0;   // updates AdamW applied (its bias correction counts these)
  int64_t consumed = 0;          // sampler position
  int64_t bad_steps_in_row = 0;  // consecutive non-finite steps
  int64_t skipped_steps = 0;     // all skipped updates
  int64_t tokens_seen = 0;
  double elapsed_seconds = 0;
  double cpu_seconds = 0;  // this process's CPU time (all threads) in training steps
  nlohmann::json config;   // the resolved config the run was started with
  nlohmann::json to_json() const;
  static TrainingState from_json(const nlohmann::json& j, const std::string& source);
};

// Called on every rank. Rank 0 stages the folder and writes the model, tokenizer and state; the
// optimizer state goes to training_state/optimizer.safetensors, or, sharded (ZeRO-1), each rank
// writes its part to training_state/optimizer-rank-R.safetensors; rank 0 renames the folder into
// place once all parts are there. state.json records the world size and the number of shards.
void save_training_checkpoint(const std::filesystem::path& dir, C3Model& model, const AdamW& optimizer,
                              const TrainingState& state, const std::map<std::string, std::string>& tokenizer_files,
                              Communicator& comm);

// Reads training_state/ of `dir` into `optimizer` and returns the state (the model is loaded
// separately with load_c3). The optimizer takes the tensors it owns from whichever file holds
// them, so a checkpoint saved by any number of ranks resumes on any other.
TrainingState load_training_state(const std::filesystem::path& dir, AdamW& optimizer, const at::Device& device);

// Removes all but the newest `keep` checkpoints (each disappears at once: a kill midway leaves no
// half-removed checkpoint that still looks complete).
void prune_checkpoints(const std::filesystem::path& output, int64_t keep);

// Why the checkpoint `dir` cannot be resumed from ("" when it can): no state.json, or a file
// missing, of another size or with other contents than its manifest records. A checkpoint of a c3
// that wrote no manifest is checked for its state only.
std::string checkpoint_problem(const std::filesystem::path& dir);

// The checkpoint a run in `output` resumes from: the newest checkpoint-N folder without a problem.
// Damaged newer ones are renamed checkpoint-N.damaged (kept for inspection), each said in the log.
// Empty when `output` holds no checkpoint-N folder; an error when it holds only damaged ones (a
// run is never silently restarted from scratch over its own checkpoints).
std::filesystem::path choose_resume_checkpoint(const std::filesystem::path& output);

}  // namespace c3
