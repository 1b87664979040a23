// `c3 train --dry-run`: the memory a run would need per GPU, without reading weights or data.
#include <fmt/format.h>

#include <algorithm>
#include <set>

#include "c3/io/checkpoint_dir.h"
#include "c3/model/c3_io.h"
#include "c3/torch_compat.h"
#include "c3/train/checkpoints.h"
#include "c3/train/memory_estimate.h"
#include "c3/train/trainer.h"
#include "c3/util/error.h"
#include "train_setup.h"

namespace fs = std::filesystem;

namespace c3 {
namespace {

// The architecture the settings resolve to, from config files only.
C3Config resolve_architecture(const TrainSettings& s) {
  using namespace train_setup;
  const auto checkpoints = list_checkpoints(s.output);
  if (!checkpoints.empty()) return read_c3_config(checkpoints.back());
  if (!s.checkpoint.empty()) return read_c3_config(warm_start_checkpoint(s.checkpoint));
  StagedFolder staged;
  const auto tokenizer = load_tokenizer(prepare_tokenizer(s, fs::path(), staged));
  auto side = [&](const std::string& spec, const std::string& key) {
    if (is_dir(spec)) return Qwen2Config::from_json(io::read_json_file(fs::path(spec) / "config.json"), spec);
    return architecture(spec, tokenizer->vocab_size(), key);
  };
  C3Config config;
  config.encoder = side(s.encoder, "model.encoder");
  config.decoder = side(s.decoder, "model.decoder");
  config.latent_tokens = s.latent_tokens;
  return config;
}

std::string gib(double bytes) { return fmt::format("{:.1f}", bytes / (1ull << 30)); }

}  // namespace

void print_dry_run(const TrainSettings& s, int world_size, std::ostream& out) {
  train_setup::check_settings(s);
  const C3Config config = resolve_architecture(s);
  MemoryEstimateInput in;
  in.config = config;
  in.batch = s.batch_size;
  in.decoder_tokens = s.max_length;  // the worst case: a sample as long as the window allows
  in.encoder_tokens = s.max_length;
  const at::ScalarType dtype = s.dtype == "auto" ? at::kBFloat16 : scalar_type_from_name(s.dtype);
  in.weight_bytes = static_cast<int64_t>(c10::elementSize(dtype));
  in.fp32_master = s.adamw.fp32_master;
  in.fp32_grad_accumulation = s.grad_accum > 1 && s.fp32_grad_accumulation;
  in.loss_chunk = s.loss_chunk;
  out << fmt::format(
      "c3 train --dry-run: encoder {:.2f}B + decoder {:.2f}B parameters (N = {}), all trained; micro-batch {} x {} "
      "tokens, {} accumulated; {} weights, {} masters; ZeRO stage {}; {} attention (LibTorch {})\n"
      "Estimated peak memory per GPU, GiB (formulas in c3/train/memory_estimate.h; an estimate, not a measurement):\n\n",
      config.encoder.parameter_count() / 1e9, config.decoder.parameter_count() / 1e9, config.latent_tokens, s.batch_size,
      s.max_length, s.grad_accum, scalar_type_name(dtype), in.fp32_master && in.weight_bytes != 4 ? "fp32" : "no",
      s.zero_stage, in.fused_attention ? "fused" : "eager", compat::torch_version());
  out << "| GPUs | run | weights | gradients | optimizer state | activations, recompute | activations, none | logits | "
         "total |\n|---:|---|---:|---:|---:|---:|---:|---:|---:|\n";
  std::set<int> sizes{1, 2, 4, 8, world_size};
  for (int n : sizes) {
    MemoryEstimateInput ours = in;
    ours.optimizer_shards = s.zero_stage >= 1 ? n : 1;
    ours.gradient_shards = s.zero_stage >= 2 ? n : 1;
    ours.recompute = true;
    const MemoryEstimate with = estimate_training_memory(ours);
    ours.recompute = false;
    const MemoryEstimate without = estimate_training_memory(ours);
    const MemoryEstimate& configured = s.gradient_checkpointing ? with : without;
    out << fmt::format("| {} | c3, ZeRO-{}, recompute {} | {} | {} | {} | {} | {} | {} | **{}** |\n", n, s.zero_stage,
                       s.gradient_checkpointing ? "on" : "off", gib(with.weights), gib(with.gradients),
                       gib(with.master + with.moments), gib(with.activations), gib(without.activations), gib(with.logits),
                       gib(configured.total()));
    const MemoryEstimate ref = estimate_deepspeed_zero2_memory(in, n);
    out << fmt::format("| {} | DeepSpeed ZeRO-2 (reference) | {} | {} | {} | {} | - | {} | {} |\n", n, gib(ref.weights),
                       gib(ref.gradients), gib(ref.master + ref.moments), gib(ref.activations), gib(ref.logits),
                       gib(ref.total()));
  }
  out << "\nThis run: " << world_size << (world_size == 1 ? " process" : " processes") << ".\n";
}

}  // namespace c3
