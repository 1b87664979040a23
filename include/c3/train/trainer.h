// `c3 train`: end-to-end C3 training (spec section 3). Builds the model (two Hugging Face Qwen2
// checkpoints, a C3 checkpoint, or from scratch), the data, AdamW with per-part learning rates,
// and runs the loop with gradient accumulation, clipping, non-finite guards, periodic validation
// (loss and greedy reconstruction precision), checkpoints and resume.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <ostream>
#include <set>
#include <string>
#include <vector>

#include "c3/data/dataset.h"
#include "c3/model/c3_model.h"
#include "c3/model/c3_prompt.h"
#include "c3/train/communicator.h"
#include "c3/train/optimizer.h"

namespace c3 {

struct TrainSettings {
  // Model. Either `checkpoint` (a C3 folder: warm start), or `encoder` and `decoder`, each a Hugging
  // Face Qwen2 folder (pretrained) or an architecture for training from scratch: a config.json file
  // or "preset:NAME" (tiny, 0.5b, 1.5b, 3b), whose vocabulary is resized to the tokenizer's.
  std::string checkpoint, encoder, decoder;
  std::string tokenizer;                 // default: the checkpoint / decoder folder
  std::optional<int64_t> latent_tokens;  // N; unset: the checkpoint's (warm start, resume), else 32
  bool resize_latents = false;
  // How a new run starts the projector: "keep" (the checkpoint's, or normal(0, init range) for a C3
  // assembled from two LLMs) or "whiten" (c3/model/projector_init.h, from the slot states of
  // `projector_init_spans` training pieces). A resumed run keeps its checkpoint's either way.
  std::string projector_init = "keep";
  int64_t projector_init_spans = 512;
  std::string prompt_template = kDefaultPromptTemplate;
  std::string instruction = kDefaultInstruction;
  std::string dtype = "auto";  // auto (bf16 on CUDA, fp32 on CPU) | float32 | bfloat16
  bool gradient_checkpointing = false;
  uint64_t init_seed = 0;
  // LoRA (c3/model/lora.h): a side with targets trains an adapter on those projections instead of
  // its weights, which stay frozen; rank, alpha and dropout are shared by both sides.
  std::vector<std::string> lora_encoder, lora_decoder;  // projection names or "all-linear"; empty: none
  int64_t lora_rank = 16;
  double lora_alpha = 32;
  double lora_dropout = 0;

  // Data.
  std::vector<std::string> train_files;
  std::string validation_file;  // else `validation_samples` are split off the training data
  int64_t validation_samples = 16;
  std::string text_field = "text";
  SampleOptions sampling;
  int64_t max_length = 8192;  // longest encoder or decoder sequence
  uint64_t data_seed = 0;
  // What the rows are asked to do (c3/data/tasks.h): task name -> weight in the mix.
  std::map<std::string, double> tasks{{"reconstruct", 1.0}};
  int64_t context_spans = 1;                // most pieces of context before the piece a continuation predicts
  std::vector<std::string> instruct_files;  // instruct records (c3/data/dataset.h: read_instruct_records)
  // Held-out instruct records, else `instruct_validation_records` are split off instruct_files.
  std::vector<std::string> instruct_validation_files;
  int64_t instruct_validation_records = 16;
  std::string continue_instruction = kContinueInstruction;

  // Optimisation.
  double lr = 1e-5;
  AdamWOptions adamw;
  int zero_stage = 0;        // 1: optimizer state sharded across data-parallel ranks (ZeRO-1); 2: gradients too
  bool overlap_comm = true;  // ZeRO-2: reduce gradient buckets while backward goes on
  std::string schedule = "cosine";
  double warmup_ratio = 0.01;
  int64_t warmup_steps = -1;               // >= 0 overrides warmup_ratio
  double clip_norm = 1.0;                  // 0: no clipping
  std::vector<std::string> frozen;         // part names
  std::map<std::string, double> lr_scale;  // part name -> multiplier
  int64_t batch_size = 2, grad_accum = 16;
  int64_t steps = 0;  // 0: from epochs
  double epochs = 5.0;
  // > 0: also stop (saved) once the training steps have taken this many minutes, summed over
  // resumes; the schedule then decays over whichever of steps and minutes ends first.
  double max_minutes = 0;
  // The same over this process's CPU minutes (all threads), for comparing runs at equal compute on
  // a machine shared with other work.
  double max_cpu_minutes = 0;
  int64_t max_bad_steps = 10;
  int64_t loss_chunk = 2048;

  // Output and monitoring.
  std::string output;
  int64_t save_every = 500, keep_checkpoints = 3;
  int64_t log_every = 10, eval_every = 500;
  int64_t eval_precision_samples = 4;
  bool eval_at_start = true;
  int64_t eval_max_new_tokens = 0;  // 0: the sample's length + 32
  bool progress = true;             // status line (only ever on a terminal)
};

// How the run was configured, as its caller resolved it (`c3 train`: every key with its value):
// saved in every checkpoint, and compared on resume to warn about keys that changed.
struct RunRecord {
  nlohmann::json settings;
  std::set<std::string> path_keys;  // its keys that hold paths (compared as paths)
};

// Returns the exit code: 0 done, 128+signal when stopped by SIGINT/SIGTERM (after saving).
int train(const TrainSettings& settings, const at::Device& device, Communicator& comm, const RunRecord& record = {});

}  // namespace c3
