// LoRA adapters (Hu et al. 2021) on the linear projections of a Qwen2ForCausalLM, as Hugging Face
// PEFT makes, saves and merges them: y = W x + b + (alpha / r) * B A dropout(x), with A [r, in]
// drawn as PEFT draws it (uniform +-1/sqrt(in)) and B [out, r] zero, so a new adapter changes
// nothing until it trains. A folder with an adapter holds adapter_config.json and
// adapter_model.safetensors ("base_model.model.<module>.lora_A.weight", ...) next to the base
// weights, which PEFT's PeftModel.from_pretrained loads onto the same base model.
#pragma once

#include <cstdint>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "c3/model/qwen2.h"

namespace c3 {

inline constexpr const char* kAdapterConfigFile = "adapter_config.json";
inline constexpr const char* kAdapterWeightsFile = "adapter_model.safetensors";

struct LoraConfig {
  int64_t rank = 0;
  double alpha = 0;
  double dropout = 0;
  std::vector<std::string> targets;  // projection names (q_proj, ..., down_proj), sorted

  double scale() const { return alpha / static_cast<double>(rank); }
  nlohmann::json to_peft_json() const;
  // PEFT's adapter_config.json; what c3 does not implement (DoRA, rsLoRA, per-layer ranks, ...) is
  // refused by name.
  static LoraConfig from_peft_json(const nlohmann::json& j, const std::string& source);
};

// The projections LoRA can adapt, in model order.
const std::vector<std::string>& lora_target_names();
// A target list as a user writes it ("all-linear" for every projection): checked and sorted.
// `key` names the setting in errors.
std::vector<std::string> resolve_lora_targets(const std::vector<std::string>& targets, const std::string& key);

bool is_lora_parameter(const std::string& name);

// Adds an adapter to every target projection (none may have one yet); A is drawn from `seed`.
void add_lora(Qwen2ForCausalLMImpl& model, const LoraConfig& config, uint64_t seed);
// The adapter the model carries, if any (every adapted projection shares it).
std::optional<LoraConfig> lora_config_of(Qwen2ForCausalLMImpl& model);
// The dropout on every adapter's input while training (not part of the weights: a setting).
void set_lora_dropout(Qwen2ForCausalLMImpl& model, double dropout);
// W += (alpha / r) B A (computed in fp32), and the adapters are gone: a plain model again.
void merge_lora(Qwen2ForCausalLMImpl& model);

bool has_adapter(const std::filesystem::path& dir);
// Adds the adapter in `dir` to the model and loads its weights; a tensor missing, extra or of the
// wrong shape is an error naming the file.
void load_adapter(Qwen2ForCausalLMImpl& model, const std::filesystem::path& dir);
// Writes the model's adapter into `dir` (which exists), in `dtype` or the adapter's own.
void write_adapter(Qwen2ForCausalLMImpl& model, const std::filesystem::path& dir, std::optional<at::ScalarType> dtype);

}  // namespace c3
