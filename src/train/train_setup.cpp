// Setting up a training run: settings checks, tokenizer, model, data, optimizer (see trainer.cpp
// for the loop).
#include "train_setup.h"

#include <spdlog/spdlog.h>

#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <random>
#include <set>
#include <tuple>

#include "c3/io/checkpoint_dir.h"
#include "c3/model/c3_io.h"
#include "c3/model/checkpoint_info.h"
#include "c3/model/lora.h"
#include "c3/train/checkpoints.h"
#include "c3/train/memory_estimate.h"
#include "c3/util/error.h"

namespace fs = std::filesystem;

namespace c3::train_setup {

Qwen2Config architecture(const std::string& spec, std::optional<int64_t> vocab_size, const std::string& key) {
  Qwen2Config config;
  if (spec.rfind("preset:", 0) == 0) {
    config = Qwen2Config::preset(spec.substr(7));
  } else {
    std::error_code ec;
    if (!fs::is_regular_file(spec, ec))
      throw UsageError(key + " '" + spec + "' is neither a checkpoint folder, a config.json file nor preset:NAME");
    config = Qwen2Config::from_json(io::read_json_file(spec), spec);
  }
  if (vocab_size) config.vocab_size = *vocab_size;
  return config;
}

namespace {

constexpr const char* kStagedPrefix = "c3-staged-";

// Staged folders of processes that no longer run (a SIGKILL, an OOM kill): c3-staged-PID-...
void remove_orphaned_staged_folders(const fs::path& temp) {
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(temp, ec)) {
    const std::string name = entry.path().filename().string();
    if (name.rfind(kStagedPrefix, 0) != 0) continue;
    const std::string rest = name.substr(std::string(kStagedPrefix).size());
    const auto dash = rest.find('-');
    if (dash == std::string::npos || dash == 0 || dash > 9 || rest.find_first_not_of("0123456789") != dash) continue;
    const pid_t pid = static_cast<pid_t>(std::stoll(rest.substr(0, dash)));
    if (::kill(pid, 0) != 0 && errno == ESRCH) fs::remove_all(entry.path(), ec);
  }
}

}  // namespace

StagedFolder::StagedFolder() {
  const fs::path temp = fs::temp_directory_path();
  remove_orphaned_staged_folders(temp);
  std::random_device rd;
  path_ = temp / (kStagedPrefix + std::to_string(::getpid()) + "-" + std::to_string(rd()) + std::to_string(rd()));
  fs::create_directories(path_);
}

StagedFolder::~StagedFolder() {
  std::error_code ec;
  fs::remove_all(path_, ec);
}

bool is_dir(const std::string& path) {
  std::error_code ec;
  return !path.empty() && fs::is_directory(path, ec);
}

// A training output folder stands for its newest checkpoint (phase 2 of a recipe starts from
// wherever phase 1 ended); anything else is taken as a C3 checkpoint itself.
fs::path warm_start_checkpoint(const std::string& path) { return resolve_c3_checkpoint(path); }

fs::path prepare_tokenizer(const TrainSettings& s, const fs::path& resume_dir, const StagedFolder& staged) {
  fs::path source = s.tokenizer;
  if (!resume_dir.empty()) {
    source = resume_dir;
  } else if (source.empty() && !s.checkpoint.empty()) {
    source = warm_start_checkpoint(s.checkpoint);
  } else if (source.empty() && is_dir(s.decoder)) {
    source = s.decoder;
  }
  if (source.empty()) throw UsageError("model.tokenizer is required when training from scratch");
  const auto tokenizer = load_tokenizer(source);
  // A copy the run owns: checkpoint rotation may delete the checkpoint it resumed from, and the
  // user may edit model.tokenizer, while every checkpoint must carry the tokenizer it trained with.
  const auto added = write_tokenizer_with_c3_tokens(source, *tokenizer, staged.path());
  std::string list;
  for (const auto& [token, id] : added) list += (list.empty() ? "" : ", ") + token + "=" + std::to_string(id);
  if (!added.empty())
    spdlog::info("added {} to the tokenizer from {} (saved with every checkpoint)", list, source.string());
  return staged.path();
}

namespace {

C3Model load_or_init_model(const TrainSettings& s, const Tokenizer& tokenizer, at::ScalarType dtype,
                           const at::Device& device, const fs::path& resume_dir) {
  C3LoadOptions options;
  options.dtype = dtype;
  options.device = device;
  options.latent_tokens = s.latent_tokens;
  options.seed = s.init_seed;
  if (!resume_dir.empty()) {
    spdlog::info("resuming from {}", resume_dir.string());
    return load_c3(resume_dir, options);
  }
  if (!s.checkpoint.empty()) {
    const fs::path from = warm_start_checkpoint(s.checkpoint);
    spdlog::info("warm start from the C3 checkpoint {}", from.string());
    options.allow_resize_latents = s.resize_latents;
    return load_c3(from, options);
  }
  if (s.encoder.empty() || s.decoder.empty())
    throw UsageError("set model.checkpoint (a C3 folder), or both model.encoder and model.decoder");
  auto source = [&](const std::string& spec, const std::string& key) {
    Qwen2Source src;
    if (is_dir(spec))
      src.dir = spec;
    else
      src.architecture = architecture(spec, tokenizer.vocab_size(), key);
    return src;
  };
  const Qwen2Source encoder = source(s.encoder, "model.encoder"), decoder = source(s.decoder, "model.decoder");
  auto describe = [](const Qwen2Source& src) {
    return src.dir.empty() ? std::string("from scratch") : "from " + src.dir.string();
  };
  spdlog::info("encoder {}, decoder {}; Q, projector and any from-scratch side initialised with seed {}",
               describe(encoder), describe(decoder), s.init_seed);
  return c3_from_qwen2(encoder, decoder, options);
}

struct LoraSide {
  Qwen2ForCausalLMImpl* model;
  const std::vector<std::string>& targets;
  std::string key, name;
  uint64_t seed;
};

std::vector<LoraSide> lora_sides(C3Model& model, const TrainSettings& s) {
  return {{model->encoder.get(), s.lora_encoder, "model.lora_encoder", "encoder", s.init_seed + 101},
          {model->decoder.get(), s.lora_decoder, "model.lora_decoder", "decoder", s.init_seed + 102}};
}

// LoRA as the settings ask: a side without an adapter gets a new one (A drawn from model.init_seed);
// one that came with the checkpoint (resume, warm start) must be the one asked for.
void attach_lora(C3Model& model, const TrainSettings& s) {
  for (const LoraSide& side : lora_sides(model, s)) {
    const auto existing = lora_config_of(*side.model);
    if (side.targets.empty()) {
      if (existing)
        throw UsageError("the checkpoint's " + side.name + " has a LoRA adapter: set " + side.key +
                         " to go on training it, or merge it into the weights first (c3 export --merge)");
      continue;
    }
    const LoraConfig want{s.lora_rank, s.lora_alpha, s.lora_dropout, resolve_lora_targets(side.targets, side.key)};
    if (!existing) {
      add_lora(*side.model, want, side.seed);
      spdlog::info("{}: LoRA rank {}, alpha {}, dropout {} on {} (its weights frozen)", side.name, want.rank,
                   want.alpha, want.dropout, joined(want.targets));
    } else if (existing->rank != want.rank || existing->alpha != want.alpha || existing->targets != want.targets) {
      throw UsageError("the checkpoint's " + side.name + " adapter (rank " + std::to_string(existing->rank) +
                       ", alpha " + fmt::format("{}", existing->alpha) + ", " + joined(existing->targets) +
                       ") is not the one " + side.key + " and model.lora_rank/lora_alpha ask for");
    }
    set_lora_dropout(*side.model, s.lora_dropout);
  }
}

}  // namespace

C3Model build_model(const TrainSettings& s, const Tokenizer& tokenizer, at::ScalarType dtype, const at::Device& device,
                    const fs::path& resume_dir) {
  C3Model model = load_or_init_model(s, tokenizer, dtype, device, resume_dir);
  attach_lora(model, s);
  return model;
}

std::vector<Sample> load_samples(const std::vector<std::string>& files, const TrainSettings& s,
                                 const Tokenizer& tokenizer, const SampleOptions& options) {
  std::vector<Document> docs;
  for (const auto& file : files) {
    auto more = read_documents(file, s.text_field);
    docs.insert(docs.end(), std::make_move_iterator(more.begin()), std::make_move_iterator(more.end()));
  }
  return make_samples(docs, tokenizer, options);
}

std::string joined(const std::vector<std::string>& items) {
  std::string out;
  for (const auto& item : items) out += (out.empty() ? "" : ", ") + item;
  return out;
}

namespace {

// A path saved relative by an older c3 (from the working directory then) and the same path now
// absolute are the same setting.
bool same_value(const nlohmann::json& a, const nlohmann::json& b, bool is_path) {
  if (a == b) return true;
  if (!is_path) return false;
  auto absolute = [](const nlohmann::json& v) {
    nlohmann::json out = v.is_array() ? v : nlohmann::json::array({v});
    for (auto& p : out)
      if (p.is_string() && !p.get<std::string>().empty())
        p = fs::absolute(p.get<std::string>()).lexically_normal().string();
    return out;
  };
  return absolute(a) == absolute(b);
}

}  // namespace

std::vector<std::string> changed_keys(const nlohmann::json& before, const nlohmann::json& now,
                                      const std::set<std::string>& path_keys) {
  std::vector<std::string> out;
  if (!before.is_object() || !now.is_object()) return out;
  // Only what shapes training; other commands' sections (compress.*, eval.*) and keys an older
  // c3 did not have are not differences the user made.
  for (const char* name : {"model", "data", "optim", "train"}) {
    const auto section = now.value(name, nlohmann::json::object()), old = before.value(name, nlohmann::json::object());
    for (auto key = section.begin(); key != section.end(); ++key) {
      const std::string full = std::string(name) + "." + key.key();
      if (old.contains(key.key()) && !same_value(old[key.key()], key.value(), path_keys.count(full) > 0))
        out.push_back(full);
    }
  }
  return out;
}

void log_memory_estimate(const TrainSettings& s, C3Model& model, const C3Prompt& prompt,
                         const std::vector<Sample>& samples, at::ScalarType dtype) {
  int64_t longest = 0;
  for (const auto& sample : samples) longest = std::max<int64_t>(longest, static_cast<int64_t>(sample.ids.size()));
  MemoryEstimateInput in;
  in.config = model->config();
  in.trainable_parameters = 0;
  for (const auto& item : model->named_parameters(/*recurse=*/true)) {
    if (item.value().requires_grad()) in.trainable_parameters += item.value().numel();
    if (is_lora_parameter(item.key())) in.adapter_parameters += item.value().numel();
  }
  in.batch = s.batch_size;
  in.encoder_tokens = longest + prompt.encoder_extra_tokens();
  in.decoder_tokens = longest + prompt.decoder_extra_tokens();
  in.weight_bytes = static_cast<int64_t>(c10::elementSize(dtype));
  in.fp32_master = s.adamw.fp32_master;
  in.fp32_grad_accumulation = optimizer_options(s, 0, 1).fp32_grad_accumulation;
  in.recompute = s.gradient_checkpointing;
  in.loss_chunk = s.loss_chunk;
  const MemoryEstimate m = estimate_training_memory(in);
  spdlog::info(
      "{} of {} parameters train; estimated peak memory per device: {} (weights {}, gradients {}, fp32 master {}, "
      "AdamW moments {}, activations {}, logits {}) for the longest sample",
      human_count(in.trainable_parameters), human_count(in.config.parameter_count() + in.adapter_parameters),
      human_bytes(m.total()), human_bytes(m.weights), human_bytes(m.gradients), human_bytes(m.master),
      human_bytes(m.moments), human_bytes(m.activations), human_bytes(m.logits));
}

AdamW make_optimizer(C3Model& model, const TrainSettings& s, int rank, int world_size) {
  std::vector<ParamGroup> groups;
  for (C3Part part : all_c3_parts()) {
    const std::string name = c3_part_name(part);
    const bool frozen = std::find(s.frozen.begin(), s.frozen.end(), name) != s.frozen.end();
    // A side with a LoRA adapter trains the adapter alone.
    const bool lora = (part == C3Part::encoder && lora_config_of(*model->encoder)) ||
                      (part == C3Part::decoder && lora_config_of(*model->decoder));
    std::vector<std::pair<std::string, at::Tensor>> params;
    for (auto& [pname, p] : model->part_parameters(part)) {
      // The encoder's own lm_head (when untied) is never used: compress stops at the final norm. It
      // gets no gradient, so it has no optimizer state and ZeRO-2 sends nothing for it.
      const bool unused =
          part == C3Part::encoder && model->encoder->lm_head && p.is_same(model->encoder->lm_head->weight);
      const bool trains = !frozen && !unused && (!lora || is_lora_parameter(pname));
      p.requires_grad_(trains);
      if (trains) params.emplace_back(pname, p);
    }
    if (frozen) continue;
    auto scale = s.lr_scale.find(name);
    groups.push_back({name, params, scale == s.lr_scale.end() ? 1.0 : scale->second, false});
  }
  return AdamW(groups, optimizer_options(s, rank, world_size));
}

AdamWOptions optimizer_options(const TrainSettings& s, int rank, int world_size) {
  AdamWOptions options = s.adamw;
  // One micro-batch has nothing to sum: its gradients stay where backward put them.
  options.fp32_grad_accumulation = s.adamw.fp32_grad_accumulation && s.grad_accum > 1;
  if (s.zero_stage >= 1) options.shard_rank = rank, options.shard_count = world_size;
  options.shard_gradients = s.zero_stage >= 2 && world_size > 1;
  return options;
}

void check_settings(const TrainSettings& s) {
  if (s.output.empty()) throw UsageError("train.output is required (the folder for checkpoints and logs)");
  if (s.checkpoint.empty() && (s.encoder.empty() || s.decoder.empty()))
    throw UsageError("set model.checkpoint (a C3 folder), or both model.encoder and model.decoder");
  if (s.train_files.empty()) throw UsageError("data.train is empty: give at least one training file or folder");
  if (s.batch_size <= 0 || s.grad_accum <= 0)
    throw UsageError("train.batch_size and train.grad_accum must be positive");
  if (s.steps < 0 || (s.steps == 0 && !(s.epochs > 0))) throw UsageError("set train.steps > 0 or train.epochs > 0");
  if (!(s.lr >= 0)) throw UsageError("optim.lr must be >= 0");
  if (!(s.clip_norm >= 0)) throw UsageError("optim.clip_norm must be >= 0");
  if (s.adamw.beta1 < 0 || s.adamw.beta1 >= 1 || s.adamw.beta2 < 0 || s.adamw.beta2 >= 1)
    throw UsageError("optim.beta1 and optim.beta2 must be in [0, 1)");
  if (!(s.adamw.eps > 0)) throw UsageError("optim.eps must be positive");
  if (s.zero_stage < 0 || s.zero_stage > 2)
    throw UsageError("optim.zero_stage must be 0 (replicated), 1 (optimizer state sharded) or 2 (gradients too)");
  if (s.save_every <= 0 || s.log_every <= 0) throw UsageError("train.save_every and train.log_every must be positive");
  if (s.max_bad_steps <= 0) throw UsageError("train.max_bad_steps must be positive");
  if (s.projector_init != "keep" && s.projector_init != "whiten")
    throw UsageError("model.projector_init must be keep or whiten");
  if (s.projector_init_spans < 2) throw UsageError("model.projector_init_spans must be at least 2");
  if (!(s.max_minutes >= 0)) throw UsageError("train.max_minutes must be 0 (no limit) or positive");
  if (!(s.max_cpu_minutes >= 0)) throw UsageError("train.max_cpu_minutes must be 0 (no limit) or positive");
  for (const auto& [part, scale] : s.lr_scale)
    if (!(scale >= 0)) throw UsageError("optim.lr_scale_" + part + " must be >= 0");
  for (const auto& name : s.frozen) {
    bool known = false;
    for (C3Part part : all_c3_parts()) known = known || c3_part_name(part) == name;
    if (!known)
      throw UsageError("optim.frozen: unknown part '" + name + "' (choose encoder, query, projector, decoder)");
  }
  const bool any_lora = !s.lora_encoder.empty() || !s.lora_decoder.empty();
  if (any_lora && s.lora_rank <= 0) throw UsageError("model.lora_rank must be positive");
  if (any_lora && !(s.lora_alpha > 0)) throw UsageError("model.lora_alpha must be positive");
  if (!(s.lora_dropout >= 0 && s.lora_dropout < 1)) throw UsageError("model.lora_dropout must be in [0, 1)");
  if (any_lora && s.lora_dropout > 0 && s.gradient_checkpointing)
    throw UsageError(
        "model.lora_dropout > 0 with model.gradient_checkpointing: the recomputed forward would draw other "
        "dropout masks (set one of them off)");
  for (const auto& [targets, part, key] : {std::tuple{&s.lora_encoder, "encoder", "model.lora_encoder"},
                                           std::tuple{&s.lora_decoder, "decoder", "model.lora_decoder"}}) {
    resolve_lora_targets(*targets, key);
    if (!targets->empty() && std::find(s.frozen.begin(), s.frozen.end(), part) != s.frozen.end())
      throw UsageError(std::string(key) + " trains an adapter on the " + part + ", which optim.frozen freezes");
  }
  if (std::all_of(all_c3_parts().begin(), all_c3_parts().end(), [&](C3Part part) {
        return std::find(s.frozen.begin(), s.frozen.end(), c3_part_name(part)) != s.frozen.end();
      }))
    throw UsageError("optim.frozen freezes every part: nothing to train");
}

}  // namespace c3::train_setup
