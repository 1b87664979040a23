// c3 train: end-to-end C3 training into an output folder; rerunning on that folder resumes it.
#include <c10/core/impl/DeviceGuardImplInterface.h>
#include <spdlog/spdlog.h>

#include <array>
#include <chrono>
#include <filesystem>
#include <iostream>

#include "c3/io/checkpoint_dir.h"
#include "c3/model/c3_prompt.h"
#include "c3/train/checkpoints.h"
#include "c3/train/distributed.h"
#include "c3/train/trainer.h"
#include "c3/util/error.h"
#include "command.h"

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
        if (Config::names_a_file(v.get<std::string>())) v = fs::absolute(v.get<std::string>()).lexically_normal().string();
      };
      if (value.is_array())
        for (auto& v : value) absolute(v);
      else
        absolute(value);
    }
  }
  return out;
}

class TrainCommand : public Command {
 public:
  std::string name() const override { return "train"; }
  std::string summary() const override { return "Train a C3 model (resumes when OUTPUT already holds a checkpoint)"; }

  void setup(CLI::App& app, Options& o) override {
    using nlohmann::json;
    // model
    app.footer("\nEvery key (data.*, optim.*, train.*, model.*) can be set in a --config file or with --set "
               "section.key=value;\n'c3 train --dump-config' lists them with their values. Configs: configs/*.json.");
    app.add_flag("--dry-run", dry_run_,
                 "Print the estimated memory per GPU (1, 2, 4, 8 and this world size; vs DeepSpeed ZeRO-2) and exit");
    o.add_path(app, "--checkpoint", "model.checkpoint", "", "C3 checkpoint folder to start from (warm start)");
    o.add_path(app, "--encoder", "model.encoder", "",
          "Encoder: Hugging Face Qwen2 folder, or for training from scratch a config.json or preset:NAME");
    o.add_path(app, "--decoder", "model.decoder", "", "Decoder: as --encoder");
    o.add_path(app, "--tokenizer", "model.tokenizer", "", "Tokenizer folder or file (default: the checkpoint's / decoder's)");
    o.add(app, "--latent-tokens", "model.latent_tokens", 32, "Number of latent tokens N (context query slots)");
    o.config().declare("model.resize_latents", false,
                       "Allow a C3 checkpoint with a different N: Q is re-initialised (logged)");
    o.config().declare("model.prompt_template", kDefaultPromptTemplate,
                       "Decoder prompt: {latents} becomes <img><imgpad>xN</img>, {instruction} the instruction");
    o.config().declare("model.instruction", kDefaultInstruction, "Instruction inside the decoder prompt");
    o.add(app, "--dtype", "model.dtype", "auto", "Training dtype of the weights (auto: bfloat16 on CUDA, float32 on CPU)",
          {"auto", "float32", "bfloat16"});
    o.add(app, "--gradient-checkpointing", "model.gradient_checkpointing", false,
          "Recompute each transformer block in backward (less memory, ~1/3 more compute)");
    o.config().declare("model.init_seed", 0, "Seed for freshly initialised weights (scratch, Q, projector)");
    // data
    o.add_path(app, "--data", "data.train", json::array(), "Training data: .jsonl, conversations .json, .txt or folders");
    o.add_path(app, "--validation", "data.validation", "", "Validation data (default: split off the training data)");
    o.config().declare("data.validation_samples", 16, "Samples split off for validation when data.validation is empty");
    o.config().declare("data.text_field", "text", "Field holding the text in JSONL lines");
    o.config().declare("data.min_tokens", 256, "Shortest piece cut from a long document (tokens)");
    o.config().declare("data.max_tokens", 1024, "Longest piece cut from a long document (tokens)");
    o.config().declare("data.split_long", true, "Cut documents longer than data.max_tokens (else they are an error)");
    o.config().declare("data.pack_short", false, "Join consecutive documents shorter than data.min_tokens");
    o.config().declare("data.max_length", 8192, "Longest encoder or decoder sequence (tokens)");
    o.config().declare("data.seed", 0, "Seed for the validation split, piece lengths and shuffling");
    // optimisation
    o.add(app, "--lr", "optim.lr", 1e-5, "Peak learning rate");
    o.config().declare("optim.beta1", 0.9, "AdamW beta1");
    o.config().declare("optim.beta2", 0.999, "AdamW beta2");
    o.config().declare("optim.eps", 1e-8, "AdamW epsilon");
    o.config().declare("optim.weight_decay", 0.0, "AdamW weight decay (matrices only, as HF Trainer)");
    o.config().declare("optim.master_weights", "fp32",
                       "bf16 training: fp32 master weights and AdamW state, or none (state in bf16, as "
                       "model.to(bfloat16) + torch AdamW; half the optimizer memory)",
                       {"fp32", "none"});
    o.config().declare("optim.fp32_grad_accumulation", true,
                       "With fp32 master weights: sum the micro-batches' bf16 gradients in fp32 (DeepSpeed's "
                       "default; costs 4 bytes per parameter)");
    o.config().declare("optim.zero_stage", 0,
                       "Data-parallel memory sharding: 0 every rank holds everything; 1 the optimizer state (fp32 "
                       "masters, AdamW moments) is split across ranks (ZeRO-1); 2 the gradients too (ZeRO-2)");
    o.config().declare("optim.schedule", "cosine", "Learning-rate schedule after warmup", {"cosine", "linear", "constant"});
    o.config().declare("optim.warmup_ratio", 0.01, "Warmup steps as a fraction of all steps");
    o.config().declare("optim.warmup_steps", -1, "Warmup steps (>= 0 overrides optim.warmup_ratio)");
    o.config().declare("optim.clip_norm", 1.0, "Clip the global gradient norm to this (0: off)");
    o.config().declare("optim.frozen", json::array(), "Parts not trained: any of encoder, query, projector, decoder");
    for (const char* part : {"encoder", "query", "projector", "decoder"})
      o.config().declare(std::string("optim.lr_scale_") + part, 1.0, std::string("Learning-rate multiplier of the ") + part);
    // loop and output
    o.add_path(app, "-o,--output", "train.output", "", "Output folder (checkpoints, metrics.jsonl); resumed if it has a checkpoint");
    o.add(app, "--batch-size", "train.batch_size", 2, "Samples per micro-batch (per GPU)");
    o.add(app, "--grad-accum", "train.grad_accum", 16, "Micro-batches accumulated per optimizer step");
    o.add(app, "--steps", "train.steps", 0, "Optimizer steps (0: from train.epochs)");
    o.add(app, "--epochs", "train.epochs", 5.0, "Epochs over the training samples when train.steps is 0");
    o.config().declare("train.save_every", 500, "Save a checkpoint every this many steps");
    o.config().declare("train.keep_checkpoints", 3, "Keep this many newest checkpoints (0: all)");
    o.config().declare("train.log_every", 10, "Log (and append to metrics.jsonl) every this many steps");
    o.config().declare("train.eval_every", 500, "Validate every this many steps (0: never)");
    o.config().declare("train.eval_at_start", true, "Validate before the first step (the untrained baseline)");
    o.config().declare("train.eval_precision_samples", 4, "Validation samples reconstructed greedily for precision");
    o.config().declare("train.eval_max_new_tokens", 0, "Generation limit for validation (0: sample length + 32)");
    o.config().declare("train.max_bad_steps", 10, "Stop after this many consecutive non-finite steps");
    o.config().declare("train.loss_chunk", 2048, "Supervised positions per lm_head chunk (0: no chunking)");
    o.config().declare("train.dist_timeout", 600.0,
                       "Seconds a multi-process rendezvous or collective may take before the run stops with an error");
    o.config().declare("train.progress", true, "Show a status line on a terminal");
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
    TrainSettings s;
    s.checkpoint = c.get<std::string>("model.checkpoint");
    s.encoder = c.get<std::string>("model.encoder");
    s.decoder = c.get<std::string>("model.decoder");
    s.tokenizer = c.get<std::string>("model.tokenizer");
    if (!c.origin("model.latent_tokens").empty()) s.latent_tokens = c.get<int64_t>("model.latent_tokens");
    s.resize_latents = c.get<bool>("model.resize_latents");
    s.prompt_template = c.get<std::string>("model.prompt_template");
    s.instruction = c.get<std::string>("model.instruction");
    s.dtype = c.get<std::string>("model.dtype");
    s.gradient_checkpointing = c.get<bool>("model.gradient_checkpointing");
    s.init_seed = c.get<uint64_t>("model.init_seed");
    s.train_files = c.get<std::vector<std::string>>("data.train");
    s.validation_file = c.get<std::string>("data.validation");
    s.validation_samples = c.get<int64_t>("data.validation_samples");
    s.text_field = c.get<std::string>("data.text_field");
    s.sampling.min_tokens = c.get<int64_t>("data.min_tokens");
    s.sampling.max_tokens = c.get<int64_t>("data.max_tokens");
    s.sampling.split_long = c.get<bool>("data.split_long");
    s.sampling.pack_short = c.get<bool>("data.pack_short");
    s.max_length = c.get<int64_t>("data.max_length");
    s.data_seed = c.get<uint64_t>("data.seed");
    s.lr = c.get<double>("optim.lr");
    s.adamw.beta1 = c.get<double>("optim.beta1");
    s.adamw.beta2 = c.get<double>("optim.beta2");
    s.adamw.eps = c.get<double>("optim.eps");
    s.adamw.weight_decay = c.get<double>("optim.weight_decay");
    s.adamw.fp32_master = c.get<std::string>("optim.master_weights") == "fp32";
    s.fp32_grad_accumulation = c.get<bool>("optim.fp32_grad_accumulation");
    s.zero_stage = c.get<int>("optim.zero_stage");
    s.schedule = c.get<std::string>("optim.schedule");
    s.warmup_ratio = c.get<double>("optim.warmup_ratio");
    s.warmup_steps = c.get<int64_t>("optim.warmup_steps");
    s.clip_norm = c.get<double>("optim.clip_norm");
    s.frozen = c.get<std::vector<std::string>>("optim.frozen");
    for (const char* part : {"encoder", "query", "projector", "decoder"})
      s.lr_scale[part] = c.get<double>(std::string("optim.lr_scale_") + part);
    s.output = c.get<std::string>("train.output");
    s.batch_size = c.get<int64_t>("train.batch_size");
    s.grad_accum = c.get<int64_t>("train.grad_accum");
    s.steps = c.get<int64_t>("train.steps");
    s.epochs = c.get<double>("train.epochs");
    s.save_every = c.get<int64_t>("train.save_every");
    s.keep_checkpoints = c.get<int64_t>("train.keep_checkpoints");
    s.log_every = c.get<int64_t>("train.log_every");
    s.eval_every = c.get<int64_t>("train.eval_every");
    s.eval_precision_samples = c.get<int64_t>("train.eval_precision_samples");
    s.eval_at_start = c.get<bool>("train.eval_at_start");
    s.eval_max_new_tokens = c.get<int64_t>("train.eval_max_new_tokens");
    s.max_bad_steps = c.get<int64_t>("train.max_bad_steps");
    s.loss_chunk = c.get<int64_t>("train.loss_chunk");
    s.progress = c.get<bool>("train.progress");
    s.resolved_config = saved_settings(c);
    for (const char* section : kSections)
      for (const auto& [name, value] : s.resolved_config[section].items())
        if (c.is_path(std::string(section) + "." + name)) s.path_keys.insert(std::string(section) + "." + name);
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
    c10::Device device = runtime.device;
    if (dist.active()) {
      if (dist.rank != 0 && spdlog::default_logger()->level() < spdlog::level::warn)
        spdlog::set_level(spdlog::level::warn);
      if (device.is_cuda()) {
        device = c10::Device(c10::kCUDA, static_cast<c10::DeviceIndex>(dist.local_rank));
        c10::impl::getDeviceGuardImpl(c10::DeviceType::CUDA)->setDevice(device);  // before NCCL starts
      }
    }
    const double timeout = c.get<double>("train.dist_timeout");
    if (timeout <= 0) throw UsageError("train.dist_timeout must be positive (seconds)");
    const auto comm = make_communicator(dist, device, std::chrono::milliseconds(static_cast<int64_t>(timeout * 1000)));
    if (dist.active()) spdlog::info("data parallel: {}", comm->describe());
    return train(s, device, *comm);
  }
 private:
  bool dry_run_ = false;
};

C3_REGISTER_COMMAND(TrainCommand);

}  // namespace c3::cli
