#include "c3/model/lora.h"

#include <algorithm>
#include <cmath>
#include <set>

#include "c3/io/checkpoint_dir.h"
#include "c3/io/safetensors.h"
#include "c3/io/tensor_io.h"
#include "c3/util/atomic_file.h"
#include "c3/util/error.h"

namespace fs = std::filesystem;

namespace c3 {
namespace {

// What PEFT writes in front of the model's own parameter names.
constexpr const char* kPeftPrefix = "base_model.model.";

std::string leaf_name(const std::string& module_name) {
  const auto dot = module_name.rfind('.');
  return dot == std::string::npos ? module_name : module_name.substr(dot + 1);
}

// The model's linear layers, by module name.
std::vector<std::pair<std::string, LinearImpl*>> linear_layers(Qwen2ForCausalLMImpl& model) {
  std::vector<std::pair<std::string, LinearImpl*>> out;
  for (const auto& item : model.named_modules("", /*include_self=*/false))
    if (auto* linear = item.value()->as<LinearImpl>()) {
      const std::string leaf = leaf_name(item.key());
      if (leaf != "lora_A" && leaf != "lora_B") out.emplace_back(item.key(), linear);
    }
  return out;
}

bool is_target(const LoraConfig& config, const std::string& module_name) {
  return std::binary_search(config.targets.begin(), config.targets.end(), leaf_name(module_name));
}

// PEFT options whose non-default values change what an adapter computes, which c3 does not do.
void refuse_unsupported(const nlohmann::json& j, const std::string& source) {
  auto is_default = [](const nlohmann::json& v) {
    return v.is_null() || (v.is_boolean() && !v.get<bool>()) || (v.is_object() && v.empty()) ||
           (v.is_array() && v.empty()) || (v.is_string() && (v == "none" || v.get<std::string>().empty()));
  };
  // (layers_pattern only means something with layers_to_transform, which is refused.)
  for (const char* key :
       {"use_rslora", "use_dora", "fan_in_fan_out", "bias", "lora_bias", "modules_to_save", "rank_pattern",
        "alpha_pattern", "layers_to_transform", "target_parameters", "trainable_token_indices", "exclude_modules",
        "layer_replication", "use_qalora", "alora_invocation_tokens", "use_bdlora"})
    if (j.contains(key) && !is_default(j.at(key)))
      fail_file(source, std::string("adapter option ") + key + " = " + j.at(key).dump() + " is not supported by c3");
}

}  // namespace

const std::vector<std::string>& lora_target_names() {
  static const std::vector<std::string> names{"q_proj",    "k_proj",  "v_proj",   "o_proj",
                                              "gate_proj", "up_proj", "down_proj"};
  return names;
}

std::vector<std::string> resolve_lora_targets(const std::vector<std::string>& targets, const std::string& key) {
  std::set<std::string> out;
  for (const auto& t : targets) {
    if (t == "all-linear") {
      out.insert(lora_target_names().begin(), lora_target_names().end());
    } else if (std::find(lora_target_names().begin(), lora_target_names().end(), t) != lora_target_names().end()) {
      out.insert(t);
    } else {
      std::string known;
      for (const auto& n : lora_target_names()) known += n + ", ";
      throw UsageError(key + ": unknown target '" + t + "' (choose from " + known + "or all-linear)");
    }
  }
  return {out.begin(), out.end()};
}

bool is_lora_parameter(const std::string& name) {
  for (const char* part : {".lora_A.", ".lora_B."})
    if (name.find(part) != std::string::npos) return true;
  return false;
}

nlohmann::json LoraConfig::to_peft_json() const {
  return {{"peft_type", "LORA"},    {"task_type", "CAUSAL_LM"},          {"r", rank},
          {"lora_alpha", alpha},    {"lora_dropout", dropout},           {"target_modules", targets},
          {"bias", "none"},         {"fan_in_fan_out", false},           {"use_rslora", false},
          {"use_dora", false},      {"modules_to_save", nullptr},        {"init_lora_weights", true},
          {"inference_mode", true}, {"base_model_name_or_path", nullptr}};
}

LoraConfig LoraConfig::from_peft_json(const nlohmann::json& j, const std::string& source) {
  return io::with_json_errors(source, [&] {
    if (!j.is_object()) fail_file(source, "not a JSON object");
    if (j.value("peft_type", std::string()) != "LORA")
      fail_file(source, "peft_type " + j.value("peft_type", nlohmann::json()).dump() + " is not LORA");
    refuse_unsupported(j, source);
    LoraConfig c;
    c.rank = j.at("r").get<int64_t>();
    c.alpha = j.value("lora_alpha", 8.0);
    c.dropout = j.value("lora_dropout", 0.0);
    if (c.rank <= 0) fail_file(source, "r must be positive");
    if (!(c.dropout >= 0 && c.dropout < 1)) fail_file(source, "lora_dropout must be in [0, 1)");
    const nlohmann::json& targets = j.at("target_modules");
    std::vector<std::string> names;
    if (targets.is_string()) {
      if (targets != "all-linear") fail_file(source, "target_modules as a regular expression is not supported by c3");
      names.push_back("all-linear");
    } else {
      names = targets.get<std::vector<std::string>>();
    }
    try {
      c.targets = resolve_lora_targets(names, "target_modules");
    } catch (const UsageError& e) {
      fail_file(source, e.what());
    }
    if (c.targets.empty()) fail_file(source, "target_modules is empty");
    return c;
  });
}

void add_lora(Qwen2ForCausalLMImpl& model, const LoraConfig& config, uint64_t seed) {
  if (config.rank <= 0) throw UsageError("LoRA rank must be positive");
  if (lora_config_of(model)) throw Error("the model already has a LoRA adapter");
  at::Generator gen = at::make_generator<at::CPUGeneratorImpl>(seed);
  torch::NoGradGuard no_grad;
  for (auto& [name, linear] : linear_layers(model)) {
    if (!is_target(config, name)) continue;
    const at::TensorOptions options = linear->weight.options();
    const int64_t out = linear->weight.size(0), in = linear->weight.size(1);
    linear->lora_A = linear->register_module("lora_A", std::make_shared<LinearImpl>(in, config.rank, false, options));
    linear->lora_B = linear->register_module("lora_B", std::make_shared<LinearImpl>(config.rank, out, false, options));
    // PEFT: kaiming_uniform_(a=sqrt(5)) on A, which is uniform(-1/sqrt(in), 1/sqrt(in)); B zero.
    const double bound = 1.0 / std::sqrt(static_cast<double>(in));
    linear->lora_A->weight.copy_(at::empty({config.rank, in}, at::kFloat).uniform_(-bound, bound, gen));
    linear->lora_B->weight.zero_();
    linear->lora_scale = config.scale();
    linear->lora_dropout = config.dropout;
  }
  if (!lora_config_of(model)) throw UsageError("no projection of the model matches the LoRA targets");
}

std::optional<LoraConfig> lora_config_of(Qwen2ForCausalLMImpl& model) {
  std::optional<LoraConfig> config;
  for (auto& [name, linear] : linear_layers(model)) {
    if (!linear->lora_A) continue;
    if (!config) {
      config.emplace();
      config->rank = linear->lora_A->weight.size(0);
      config->alpha = linear->lora_scale * static_cast<double>(config->rank);
      config->dropout = linear->lora_dropout;
    }
    const std::string leaf = leaf_name(name);
    if (std::find(config->targets.begin(), config->targets.end(), leaf) == config->targets.end())
      config->targets.push_back(leaf);
  }
  if (config) std::sort(config->targets.begin(), config->targets.end());
  return config;
}

void set_lora_dropout(Qwen2ForCausalLMImpl& model, double dropout) {
  for (auto& [name, linear] : linear_layers(model))
    if (linear->lora_A) linear->lora_dropout = dropout;
}

void merge_lora(Qwen2ForCausalLMImpl& model) {
  torch::NoGradGuard no_grad;
  for (auto& [name, linear] : linear_layers(model)) {
    if (!linear->lora_A) continue;
    const at::Tensor delta = at::matmul(linear->lora_B->weight.to(at::kFloat), linear->lora_A->weight.to(at::kFloat));
    linear->weight.copy_(linear->weight.to(at::kFloat) + delta * linear->lora_scale);
    linear->unregister_module("lora_A");
    linear->unregister_module("lora_B");
    linear->lora_A.reset(), linear->lora_B.reset();
    linear->lora_scale = linear->lora_dropout = 0;
  }
}

bool has_adapter(const fs::path& dir) {
  std::error_code ec;
  return fs::exists(dir / kAdapterConfigFile, ec);
}

void load_adapter(Qwen2ForCausalLMImpl& model, const fs::path& dir) {
  const fs::path config_file = dir / kAdapterConfigFile, weights_file = dir / kAdapterWeightsFile;
  const LoraConfig config = LoraConfig::from_peft_json(io::read_json_file(config_file), config_file.string());
  std::error_code ec;
  if (!fs::exists(weights_file, ec))
    fail_file(dir.string(), std::string("has ") + kAdapterConfigFile + " but no " + kAdapterWeightsFile);
  add_lora(model, config, /*seed=*/0);  // every value is overwritten below
  const io::SafetensorsReader reader(weights_file);
  std::set<std::string> used;
  torch::NoGradGuard no_grad;
  for (auto& item : model.named_parameters(/*recurse=*/true)) {
    if (!is_lora_parameter(item.key())) continue;
    const std::string name = kPeftPrefix + item.key();
    const io::TensorInfo* info = reader.find(name);
    if (!info) fail_file(weights_file.string(), "missing tensor '" + name + "'");
    const std::vector<int64_t> want(item.value().sizes().begin(), item.value().sizes().end());
    if (info->shape != want)
      fail_file(weights_file.string(), "tensor '" + name + "' has shape " + io::shape_string(info->shape) +
                                           " but the adapter expects " + io::shape_string(want));
    io::copy_tensor(item.value(), *info, weights_file.string());
    used.insert(name);
  }
  for (const auto& info : reader.tensors())
    if (!used.count(info.name))
      fail_file(weights_file.string(), "unexpected tensor '" + info.name + "' that the adapter does not have");
}

void write_adapter(Qwen2ForCausalLMImpl& model, const fs::path& dir, std::optional<at::ScalarType> dtype) {
  const auto config = lora_config_of(model);
  if (!config) throw Error("the model has no LoRA adapter to write");
  std::vector<std::pair<std::string, at::Tensor>> tensors;
  for (const auto& item : model.named_parameters(/*recurse=*/true))
    if (is_lora_parameter(item.key())) {
      at::Tensor t = item.value().detach();
      tensors.emplace_back(kPeftPrefix + item.key(), dtype ? t.to(*dtype) : t);
    }
  io::write_tensors(dir / kAdapterWeightsFile, tensors, {{"format", "pt"}});
  write_file_atomically(dir / kAdapterConfigFile, config->to_peft_json().dump(2) + "\n");
}

}  // namespace c3
