// Internal to the trainer: the steps that set up a run, kept apart from the training loop.
#pragma once

#include <torch/torch.h>

#include <filesystem>
#include <nlohmann/json.hpp>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "c3/data/dataset.h"
#include "c3/model/c3_model.h"
#include "c3/model/c3_prompt.h"
#include "c3/tokenizer/tokenizer.h"
#include "c3/train/optimizer.h"
#include "c3/train/trainer.h"

namespace c3::train_setup {

// A private temporary folder, removed with everything in it. Its name carries the process id, so
// that the next one made removes those whose process is gone (killed before it could clean up).
class StagedFolder {
 public:
  StagedFolder();
  ~StagedFolder();
  StagedFolder(const StagedFolder&) = delete;
  StagedFolder& operator=(const StagedFolder&) = delete;
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

bool is_dir(const std::string& path);

// A from-scratch side: preset:NAME or a config.json file, with the tokenizer's vocabulary size
// (none: its own).
Qwen2Config architecture(const std::string& spec, std::optional<int64_t> vocab_size, const std::string& key);

// A training output folder stands for its newest checkpoint; anything else is a C3 checkpoint.
std::filesystem::path warm_start_checkpoint(const std::string& path);

// Rejects bad settings before anything is read or written.
void check_settings(const TrainSettings& s);

// Where the run's tokenizer comes from: the checkpoint being resumed, model.tokenizer, the
// warm-start checkpoint, or the decoder folder. Returns its copy in `staged`, which every checkpoint
// then carries. A plain Qwen2.5 tokenizer lacks <imgpad>, <img>, </img>: the copy adds them as the
// authors did (after the largest id).
std::filesystem::path prepare_tokenizer(const TrainSettings& s, const std::filesystem::path& resume_dir,
                                        const StagedFolder& staged);

// The model to train: resumed, warm-started, or new (each side pretrained or from scratch).
C3Model build_model(const TrainSettings& s, const Tokenizer& tokenizer, at::ScalarType dtype, const at::Device& device,
                    const std::filesystem::path& resume_dir);

std::vector<Sample> load_samples(const std::vector<std::string>& files, const TrainSettings& s,
                                 const Tokenizer& tokenizer, const SampleOptions& options);

// After the optimizer is made: what trains is what requires gradients.
void log_memory_estimate(const TrainSettings& s, C3Model& model, const C3Prompt& prompt,
                         const std::vector<Sample>& samples, at::ScalarType dtype);

// AdamW over the parts that train; frozen parts stop requiring gradients.
AdamW make_optimizer(C3Model& model, const TrainSettings& s, int rank, int world_size);
// Its options for `rank` of `world_size`: sharding by ZeRO stage, and fp32 gradient sums only when
// there is more than one micro-batch to sum (what the memory estimates read too).
AdamWOptions optimizer_options(const TrainSettings& s, int rank, int world_size);

// Training config keys (model, data, optim, train) whose values differ between a checkpoint's run
// and this one.
std::vector<std::string> changed_keys(const nlohmann::json& before, const nlohmann::json& now,
                                      const std::set<std::string>& path_keys = {});

std::string joined(const std::vector<std::string>& items);

}  // namespace c3::train_setup
