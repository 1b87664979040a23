// c3 train: end-to-end C3 training into an output folder; rerunning on that folder resumes it.
#include <spdlog/spdlog.h>

#include <array>
#include <chrono>
#include <filesystem>
#include <iostream>

#include "c3/io/checkpoint_dir.h"
#include "c3/model/c3_prompt.h"
#include "c3/model/run_folder.h"
#include "c3/train/distributed.h"
#include "c3/train/trainer.h"
#include "c3/util/dtype.h"
#include "c3/util/error.h"
#include "command.h"
#include "dry_run.h"
#include "settings_table.h"

namespace c3::cli {

namespace fs = std::filesystem;

// The config sections train owns: what train_config.json keeps and a resumed run takes back.
constexpr std::array<const char*, 4> kSections{"model", "data", "optim", "train"};

// train_config.json: train's sections, paths made absolute so the file means the same from any
// working directory (resume, --config RUN/train_config.json).
nlohmann::json saved_settings(const Config& c) {
  const nlohmann::json all = c.dump();
  nlohmann::json out = nlohmann::json::object();
  for (const char* section : kSections) {
    out[section] = all.at(section);
    for (auto& [name, value] : out[section].items()) {
      if (!c.is_path(std::string(section) + "." + name)) continue;
      auto absolute = [](nlohmann::json& v) {
        if (Config::names_a_file(v.get<std::string>()))
          v = fs::absolute(v.get<std::string>()).lexically_normal().string();
      };
      if (value.is_array())
        for (auto& v : value) absolute(v);
      else
        absolute(value);
    }
  }
  return out;
}

// What `c3 train` runs with: the library's settings and the launcher's.
struct TrainJob {
  TrainSettings train;
  double dist_timeout = 600;  // seconds
  std::string dist_backend = "auto";
};

// Every key of train's sections, its flag, default and help, and the field it fills: one
// function per section.
void add_model_keys(SettingsTable<TrainJob>& t) {
  t.path("--checkpoint", "model.checkpoint", "", "C3 checkpoint folder to start from (warm start)",
         C3_FIELD(train.checkpoint));
  t.path("--encoder", "model.encoder", "",
         "Encoder: Hugging Face Qwen2 folder, or for training from scratch a config.json or preset:NAME",
         C3_FIELD(train.encoder));
  t.path("--decoder", "model.decoder", "", "Decoder: as --encoder", C3_FIELD(train.decoder));
  t.path("--tokenizer", "model.tokenizer", "", "Tokenizer folder or file (default: the checkpoint's / decoder's)",
         C3_FIELD(train.tokenizer));
  t.custom("--latent-tokens", "model.latent_tokens", 32, "Number of latent tokens N (context query slots)",
           [](const Config& c, const std::string& key, TrainJob& j) {
             if (!c.origin(key).empty()) j.train.latent_tokens = c.get<int64_t>(key);  // unset: the checkpoint's N
           });
  t.value("", "model.resize_latents", false, "Allow a C3 checkpoint with a different N: Q is re-initialised (logged)",
          C3_FIELD(train.resize_latents));
  t.value("", "model.projector_init", "keep",
          "How a new run starts the projector: keep (the checkpoint's; normal for a C3 of two LLMs) or whiten "
          "(each slot's mean removed, the rest whitened, latents at the decoder's embedding norm)",
          C3_FIELD(train.projector_init), {"keep", "whiten"});
  t.value("", "model.projector_init_spans", 512, "Training pieces whose slot states model.projector_init whiten uses",
          C3_FIELD(train.projector_init_spans));
  t.value("", "model.prompt_template", kDefaultPromptTemplate,
          "Decoder prompt: {latents} becomes <img><imgpad>xN</img>, {instruction} the instruction",
          C3_FIELD(train.prompt_template));
  t.value("", "model.instruction", kDefaultInstruction, "Instruction inside the decoder prompt",
          C3_FIELD(train.instruction));
  t.value("--dtype", "model.dtype", "auto", std::string("Training dtype of the weights (") + kAutoDtypeHelp + ")",
          C3_FIELD(train.dtype), dtype_choices());
  t.value("--gradient-checkpointing", "model.gradient_checkpointing", false,
          "Recompute each transformer block in backward (less memory, ~1/3 more compute)",
          C3_FIELD(train.gradient_checkpointing));
  t.value("", "model.init_seed", 0, "Seed for freshly initialised weights (scratch, Q, projector)",
          C3_FIELD(train.init_seed));
  t.value("", "model.lora_encoder", nlohmann::json::array(),
          "LoRA on the encoder: projections to adapt (q_proj k_proj v_proj o_proj gate_proj up_proj down_proj, or "
          "all-linear); its weights then stay frozen. Empty: full training",
          C3_FIELD(train.lora_encoder));
  t.value("", "model.lora_decoder", nlohmann::json::array(), "LoRA on the decoder: as model.lora_encoder",
          C3_FIELD(train.lora_decoder));
  t.value("", "model.lora_rank", 16, "LoRA rank r", C3_FIELD(train.lora_rank));
  t.value("", "model.lora_alpha", 32.0, "LoRA alpha (the update is scaled by alpha / r)", C3_FIELD(train.lora_alpha));
  t.value("", "model.lora_dropout", 0.0, "Dropout on the LoRA path's input while training",
          C3_FIELD(train.lora_dropout));
}

void add_data_keys(SettingsTable<TrainJob>& t) {
  using nlohmann::json;
  t.path("--data", "data.train", json::array(), "Training data: .jsonl, conversations .json, .txt or folders",
         C3_FIELD(train.train_files));
  t.path("--validation", "data.validation", "", "Validation data (default: split off the training data)",
         C3_FIELD(train.validation_file));
  t.value("", "data.validation_samples", 16, "Samples split off for validation when data.validation is empty",
          C3_FIELD(train.validation_samples));
  t.value("", "data.text_field", "text", "Field holding the text in JSONL lines", C3_FIELD(train.text_field));
  t.value("", "data.min_tokens", 256, "Shortest piece cut from a long document (tokens)",
          C3_FIELD(train.sampling.min_tokens));
  t.value("", "data.max_tokens", 1024, "Longest piece cut from a long document (tokens)",
          C3_FIELD(train.sampling.max_tokens));
  t.value("", "data.split_long", true, "Cut documents longer than data.max_tokens (else they are an error)",
          C3_FIELD(train.sampling.split_long));
  t.value("", "data.pack_short", false, "Join consecutive documents shorter than data.min_tokens",
          C3_FIELD(train.sampling.pack_short));
  t.value("", "data.max_length", 8192, "Longest encoder or decoder sequence (tokens)", C3_FIELD(train.max_length));
  t.value("", "data.seed", 0, "Seed for the validation split, piece lengths and shuffling", C3_FIELD(train.data_seed));
  t.custom(
      "", "data.tasks", json::object({{"reconstruct", 1.0}}),
      "Tasks and their weights in the mix: reconstruct (the context is a piece, the answer that piece), continue "
      "(the context is up to data.context_spans pieces of a document, the answer the piece after them), instruct (the "
      "records of data.instruct)",
      [](const Config& c, const std::string& key, TrainJob& j) {
        j.train.tasks.clear();
        const json tasks = c.get<json>(key);  // held: items() refers into it
        for (const auto& [name, weight] : tasks.items()) {
          if (!weight.is_number()) throw UsageError(key + ": the weight of " + name + " is not a number");
          j.train.tasks[name] = weight.get<double>();
        }
      });
  t.path("", "data.instruct", json::array(),
         "instruct: records of context, instruction and answer (.jsonl, or the authors' conversations .json)",
         C3_FIELD(train.instruct_files));
  t.path("", "data.instruct_validation", json::array(),
         "instruct: held-out records for validation (else data.instruct_validation_records are split off "
         "data.instruct)",
         C3_FIELD(train.instruct_validation_files));
  t.value("", "data.instruct_validation_records", 16,
          "instruct: records of data.instruct held out for validation when data.instruct_validation names none",
          C3_FIELD(train.instruct_validation_records));
  t.value("", "data.context_spans", 1, "continue: most pieces of context before the piece to predict",
          C3_FIELD(train.context_spans));
  t.value("", "data.continue_instruction", kContinueInstruction, "continue: the instruction in the decoder prompt",
          C3_FIELD(train.continue_instruction));
}

void add_optim_keys(SettingsTable<TrainJob>& t) {
  using nlohmann::json;
  t.value("--lr", "optim.lr", 1e-5, "Peak learning rate", C3_FIELD(train.lr));
  t.value("", "optim.beta1", 0.9, "AdamW beta1", C3_FIELD(train.adamw.beta1));
  t.value("", "optim.beta2", 0.999, "AdamW beta2", C3_FIELD(train.adamw.beta2));
  t.value("", "optim.eps", 1e-8, "AdamW epsilon", C3_FIELD(train.adamw.eps));
  t.value("", "optim.weight_decay", 0.0, "AdamW weight decay (matrices only, as HF Trainer)",
          C3_FIELD(train.adamw.weight_decay));
  t.custom("", "optim.master_weights", "fp32",
           "bf16 training: fp32 master weights and AdamW state, or none (state in bf16, as model.to(bfloat16) + torch "
           "AdamW; half the optimizer memory)",
           [](const Config& c, const std::string& key, TrainJob& j) {
             j.train.adamw.fp32_master = c.get<std::string>(key) == "fp32";
           },
           {"fp32", "none"});
  t.value("", "optim.fp32_grad_accumulation", true,
          "With fp32 master weights: sum the micro-batches' bf16 gradients in fp32 (DeepSpeed's default; costs 4 bytes "
          "per parameter)",
          C3_FIELD(train.adamw.fp32_grad_accumulation));
  t.value("", "optim.zero_stage", 0,
          "Data-parallel memory sharding: 0 every rank holds everything; 1 the optimizer state (fp32 masters, AdamW "
          "moments) is split across ranks (ZeRO-1); 2 the gradients too (ZeRO-2)",
          C3_FIELD(train.zero_stage));
  t.value("", "optim.overlap_comm", true,
          "ZeRO-2: reduce each gradient bucket to its owner while backward goes on (2 in flight); false: one at a time",
          C3_FIELD(train.overlap_comm));
  t.value("", "optim.schedule", "cosine", "Learning-rate schedule after warmup", C3_FIELD(train.schedule),
          {"cosine", "linear", "constant"});
  t.value("", "optim.warmup_ratio", 0.01, "Warmup steps as a fraction of all steps", C3_FIELD(train.warmup_ratio));
  t.value("", "optim.warmup_steps", -1, "Warmup steps (>= 0 overrides optim.warmup_ratio)",
          C3_FIELD(train.warmup_steps));
  t.value("", "optim.clip_norm", 1.0, "Clip the global gradient norm to this (0: off)", C3_FIELD(train.clip_norm));
  t.value("", "optim.frozen", json::array(), "Parts not trained: any of encoder, query, projector, decoder",
          C3_FIELD(train.frozen));
  for (const std::string part : {"encoder", "query", "projector", "decoder"})
    t.custom(
        "", "optim.lr_scale_" + part, 1.0, "Learning-rate multiplier of the " + part,
        [part](const Config& c, const std::string& key, TrainJob& j) { j.train.lr_scale[part] = c.get<double>(key); });
}

void add_loop_keys(SettingsTable<TrainJob>& t) {
  t.path("-o,--output", "train.output", "",
         "Output folder (checkpoints, metrics.jsonl); resumed if it has a checkpoint", C3_FIELD(train.output));
  t.value("--batch-size", "train.batch_size", 2, "Samples per micro-batch (per GPU)", C3_FIELD(train.batch_size));
  t.value("--grad-accum", "train.grad_accum", 16, "Micro-batches accumulated per optimizer step",
          C3_FIELD(train.grad_accum));
  t.value("--steps", "train.steps", 0, "Optimizer steps (0: from train.epochs)", C3_FIELD(train.steps));
  t.value("--epochs", "train.epochs", 5.0, "Epochs over the training samples when train.steps is 0",
          C3_FIELD(train.epochs));
  t.value("--max-minutes", "train.max_minutes", 0.0,
          "Stop once training steps took this many minutes; the schedule ends with them (0: no limit)",
          C3_FIELD(train.max_minutes));
  t.value(
      "", "train.max_cpu_minutes", 0.0,
      "Stop once training steps took this many CPU minutes (all threads); the schedule ends with them (0: no limit)",
      C3_FIELD(train.max_cpu_minutes));
  t.value("", "train.save_every", 500, "Save a checkpoint every this many steps", C3_FIELD(train.save_every));
  t.value("", "train.keep_checkpoints", 3, "Keep this many newest checkpoints (0: all)",
          C3_FIELD(train.keep_checkpoints));
  t.value("", "train.log_every", 10, "Log (and append to metrics.jsonl) every this many steps",
          C3_FIELD(train.log_every));
  t.value("", "train.eval_every", 500, "Validate every this many steps (0: never)", C3_FIELD(train.eval_every));
  t.value("", "train.eval_at_start", true, "Validate before the first step (the untrained baseline)",
          C3_FIELD(train.eval_at_start));
  t.value("", "train.eval_precision_samples", 4, "Validation samples reconstructed greedily for precision",
          C3_FIELD(train.eval_precision_samples));
  t.value("", "train.eval_max_new_tokens", 0, "Generation limit for validation (0: sample length + 32)",
          C3_FIELD(train.eval_max_new_tokens));
  t.value("", "train.max_bad_steps", 10, "Stop after this many consecutive non-finite steps",
          C3_FIELD(train.max_bad_steps));
  t.value("", "train.loss_chunk", 2048, "Supervised positions per lm_head chunk (0: no chunking)",
          C3_FIELD(train.loss_chunk));
  t.value("", "train.dist_timeout", 600.0,
          "Seconds a multi-process rendezvous or collective may take before the run stops with an error",
          C3_FIELD(dist_timeout));
  t.value("", "train.dist_backend", "auto",
          "Process group: auto (NCCL on GPUs, Gloo on CPUs), nccl, or gloo (also on GPUs: ranks sharing one GPU)",
          C3_FIELD(dist_backend));
  t.value("", "train.progress", true, "Show a status line on a terminal", C3_FIELD(train.progress));
}

const SettingsTable<TrainJob>& train_table() {
  static const SettingsTable<TrainJob> table = [] {
    SettingsTable<TrainJob> t;
    add_model_keys(t), add_data_keys(t), add_optim_keys(t), add_loop_keys(t);
    return t;
  }();
  return table;
}

class TrainCommand : public Command {
 public:
  std::string name() const override { return "train"; }
  std::string summary() const override { return "Train a C3 model (resumes when OUTPUT already holds a checkpoint)"; }

  void setup(CLI::App& app, Options& o) override {
    app.footer(
        "\nEvery key (data.*, optim.*, train.*, model.*) can be set in a --config file or with --set "
        "section.key=value;\n'c3 train --dump-config' lists them with their values. Configs: configs/*.json.");
    app.add_flag("--dry-run", dry_run_,
                 "Print the estimated memory per GPU (1, 2, 4, 8 and this world size; vs DeepSpeed ZeRO-2) and exit");
    train_table().declare(app, o);
  }

  // `c3 train -o RUN` alone carries on a run: its saved settings lie under the command line's.
  void complete_config(Config& c) override {
    const fs::path saved = fs::path(c.get<std::string>("train.output")) / "train_config.json";
    std::error_code ec;
    if (c.get<std::string>("train.output").empty() || !fs::exists(saved, ec)) return;
    c.merge_under(io::read_json_file(saved), saved.string(), {kSections.begin(), kSections.end()});
    spdlog::debug("settings not given on the command line or in --config files come from {}", saved.string());
  }

  int run(const Config& c, const Runtime& runtime) override {
    TrainJob job;
    train_table().read(c, job);
    TrainSettings& s = job.train;
    RunRecord record;
    record.settings = saved_settings(c);
    for (const char* section : kSections)
      for (const auto& [name, value] : record.settings[section].items())
        if (c.is_path(std::string(section) + "." + name)) record.path_keys.insert(std::string(section) + "." + name);
    // Several processes (torchrun, srun): rank 0 logs, every rank computes on its own device.
    const DistributedEnv dist = detect_distributed_env();
    // Inputs that are not there, named with the key and where it was set, before anything starts.
    // A resumed run reads its model from its checkpoint; a dry run reads no data and plans for
    // encoder and decoder folders that are not downloaded yet.
    std::vector<std::string> inputs;
    if (!dry_run_) inputs = {"data.train", "data.validation"};
    const bool resuming = !list_checkpoints(s.output).empty();
    if (!resuming) {
      inputs.insert(inputs.end(), {"model.checkpoint", "model.tokenizer"});
      if (!dry_run_) inputs.insert(inputs.end(), {"model.encoder", "model.decoder"});
    }
    for (const auto& key : inputs) c.require_existing_paths(key);
    if (!s.checkpoint.empty() && !resuming)
      s.checkpoint = resolve_c3_checkpoint(s.checkpoint).string();  // a training run: its newest checkpoint
    if (dry_run_) {
      print_dry_run(s, dist.world_size, std::cout);
      return 0;
    }
    const c10::Device device = runtime.device;  // the local rank's GPU (resolve_device)
    if (dist.active() && dist.rank != 0 && spdlog::default_logger()->level() < spdlog::level::warn)
      spdlog::set_level(spdlog::level::warn);
    const double timeout = job.dist_timeout;
    if (timeout <= 0) throw UsageError("train.dist_timeout must be positive (seconds)");
    const std::string backend = choose_backend(job.dist_backend, device);
    const auto comm =
        make_communicator(dist, device, backend, std::chrono::milliseconds(static_cast<int64_t>(timeout * 1000)));
    if (dist.active()) spdlog::info("data parallel: {}", comm->describe());
    return train(s, device, *comm, record);
  }

 private:
  bool dry_run_ = false;
};

C3_REGISTER_COMMAND(TrainCommand);

}  // namespace c3::cli
