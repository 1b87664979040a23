// `c3 train --dry-run`: the memory a run would need per GPU, without reading weights or data.
#include <fmt/format.h>

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cctype>
#include <optional>
#include <set>

#include "c3/io/checkpoint_dir.h"
#include "c3/model/c3_io.h"
#include "c3/torch_compat.h"
#include "c3/train/checkpoints.h"
#include "c3/train/memory_estimate.h"
#include "c3/train/trainer.h"
#include "c3/util/dtype.h"
#include "c3/util/error.h"
#include "dry_run.h"
#include "train/train_setup.h"

namespace fs = std::filesystem;

namespace c3::cli {
namespace {

// The Qwen2.5 size a folder's name gives ("pretrained/Qwen2.5-1.5B" -> "1.5b"), or "".
std::string preset_in_name(const std::string& path) {
  std::string name = fs::path(path).lexically_normal().filename().string();
  if (name.empty()) name = fs::path(path).lexically_normal().parent_path().filename().string();
  std::transform(name.begin(), name.end(), name.begin(), [](unsigned char c) { return std::tolower(c); });
  for (const char* size : {"0.5b", "1.5b", "3b"})
    if (name.find(std::string("qwen2.5-") + size) != std::string::npos) return size;
  return "";
}

// One side's geometry without its weights: the folder's config.json, a config.json file,
// preset:NAME, or, for a folder that is not here (yet), the Qwen2.5 preset its name gives: a dry run
// plans a cluster job before the download. A from-scratch side takes the tokenizer's vocabulary
// when there is one (as training does), else the preset's or config.json's.
Qwen2Config side_geometry(const std::string& spec, const std::string& key, std::optional<int64_t> vocab) {
  using namespace train_setup;
  std::error_code ec;
  Qwen2Config config;
  const std::string preset = preset_in_name(spec);
  if (is_dir(spec)) {
    const fs::path file = fs::path(spec) / io::CheckpointDir::kConfigFile;
    if (!fs::exists(file, ec)) fail_file(spec, "has no config.json (" + key + ": a Hugging Face Qwen2 folder)");
    config = Qwen2Config::from_json(io::read_json_file(file), file.string());
  } else if (!fs::exists(spec, ec) && spec.rfind("preset:", 0) != 0 && !preset.empty()) {
    spdlog::warn("{} {} is not here: assuming the geometry of preset:{} (Qwen2.5-{})", key, spec, preset,
                 preset == "3b"     ? "3B"
                 : preset == "1.5b" ? "1.5B"
                                    : "0.5B");
    config = Qwen2Config::preset(preset);
  } else {
    return architecture(spec, vocab, key);  // preset:NAME or a config.json file (else the error naming the key)
  }
  return config;  // a pretrained side keeps its own vocabulary, as training does
}

// The architecture the settings resolve to, from config files only (no weights, no data).
C3Config resolve_architecture(const TrainSettings& s) {
  using namespace train_setup;
  const auto checkpoints = list_checkpoints(s.output);
  if (!checkpoints.empty()) return read_c3_config(checkpoints.back());
  if (!s.checkpoint.empty()) {
    C3Config config = read_c3_config(warm_start_checkpoint(s.checkpoint));
    config.latent_tokens = s.latent_tokens.value_or(config.latent_tokens);
    return config;
  }
  std::optional<int64_t> vocab;
  if (!s.tokenizer.empty()) {
    StagedFolder staged;
    vocab = load_tokenizer(prepare_tokenizer(s, fs::path(), staged))->vocab_size();
  }
  C3Config config;
  config.encoder = side_geometry(s.encoder, "model.encoder", vocab);
  config.decoder = side_geometry(s.decoder, "model.decoder", vocab);
  config.latent_tokens = s.latent_tokens.value_or(32);
  return config;
}

std::string gib(double bytes) { return fmt::format("{:.2f}", bytes / (1ull << 30)); }

}  // namespace

void print_dry_run(const TrainSettings& s, int world_size, std::ostream& out) {
  train_setup::check_settings(s);
  const C3Config config = resolve_architecture(s);
  MemoryEstimateInput in;
  in.config = config;
  in.batch = s.batch_size;
  in.decoder_tokens = s.max_length;  // the worst case: a sample as long as the window allows
  in.encoder_tokens = s.max_length;
  const at::ScalarType dtype = resolve_dtype(s.dtype, c10::Device(c10::kCUDA));  // planned for the GPUs
  in.weight_bytes = static_cast<int64_t>(c10::elementSize(dtype));
  in.fp32_master = s.adamw.fp32_master;
  in.fp32_grad_accumulation = train_setup::optimizer_options(s, 0, 1).fp32_grad_accumulation;
  in.loss_chunk = s.loss_chunk;
  out << fmt::format(
      "c3 train --dry-run: encoder {:.2f}B + decoder {:.2f}B parameters (N = {}), all trained; micro-batch {} x {} "
      "tokens, {} accumulated; {} weights, {} masters; ZeRO stage {}; {} attention (LibTorch {})\n"
      "Estimated peak memory per GPU, GiB (formulas in c3/train/memory_estimate.h; an estimate, not a "
      "measurement):\n\n",
      config.encoder.parameter_count() / 1e9, config.decoder.parameter_count() / 1e9, config.latent_tokens,
      s.batch_size, s.max_length, s.grad_accum, scalar_type_name(dtype),
      in.fp32_master && in.weight_bytes != 4 ? "fp32" : "no", s.zero_stage, in.fused_attention ? "fused" : "eager",
      compat::torch_version());
  out << "| GPUs | run | weights | gradients | optimizer state | activations, recompute | activations, none | logits | "
         "total |\n|---:|---|---:|---:|---:|---:|---:|---:|---:|\n";
  std::set<int> sizes{1, 2, 4, 8, world_size};
  for (int n : sizes) {
    MemoryEstimateInput ours = in;
    ours.optimizer_shards = s.zero_stage >= 1 ? n : 1;
    ours.gradient_shards = s.zero_stage >= 2 ? n : 1;
    ours.ranks = n;
    ours.recompute = true;
    const MemoryEstimate with = estimate_training_memory(ours);
    ours.recompute = false;
    const MemoryEstimate without = estimate_training_memory(ours);
    const MemoryEstimate& configured = s.gradient_checkpointing ? with : without;
    out << fmt::format("| {} | c3, ZeRO-{}, recompute {} | {} | {} | {} | {} | {} | {} | **{}** |\n", n, s.zero_stage,
                       s.gradient_checkpointing ? "on" : "off", gib(with.weights), gib(with.gradients),
                       gib(with.master + with.moments), gib(with.activations), gib(without.activations),
                       gib(with.logits), gib(configured.total()));
    const MemoryEstimate ref = estimate_deepspeed_zero2_memory(in, n);
    out << fmt::format("| {} | DeepSpeed ZeRO-2 (reference) | {} | {} | {} | {} | - | {} | {} |\n", n, gib(ref.weights),
                       gib(ref.gradients), gib(ref.master + ref.moments), gib(ref.activations), gib(ref.logits),
                       gib(ref.total()));
  }
  out << "\nThis run: " << world_size << (world_size == 1 ? " process" : " processes") << ".\n";
}

}  // namespace c3::cli
