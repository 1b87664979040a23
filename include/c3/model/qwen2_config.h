// The decoder-only LLM architecture as Hugging Face's config.json describes it, for the families
// whose blocks differ only in configuration (model_type): qwen2 (q/k/v biases), llama (optional
// attention and MLP biases, Llama 3 RoPE scaling), qwen3 (per-head q/k RMSNorm, explicit head_dim),
// mistral (without a sliding window). Anything else, or an option c3 does not implement, is refused
// by name. Reads both the transformers-4 spelling (torch_dtype, rope_theta, rope_scaling) and the
// transformers-5 one (dtype, rope_parameters, layer_types); writes the transformers-4 spelling,
// which both versions read.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>

namespace c3 {

// Llama 3's RoPE frequency scaling (rope_type "llama3"); type "default" leaves the frequencies.
struct RopeScaling {
  std::string type = "default";
  double factor = 1, low_freq_factor = 1, high_freq_factor = 4;
  int64_t original_max_position_embeddings = 8192;
  bool operator==(const RopeScaling& o) const {
    return type == o.type && factor == o.factor && low_freq_factor == o.low_freq_factor &&
           high_freq_factor == o.high_freq_factor &&
           original_max_position_embeddings == o.original_max_position_embeddings;
  }
};

struct Qwen2Config {
  std::string model_type = "qwen2";  // the family: qwen2, llama, qwen3, mistral
  int64_t vocab_size = 151936;
  int64_t hidden_size = 896;
  int64_t intermediate_size = 4864;
  int64_t num_hidden_layers = 24;
  int64_t num_attention_heads = 14;
  int64_t num_key_value_heads = 2;
  int64_t head_dim = 64;  // hidden_size / num_attention_heads unless config.json says otherwise
  int64_t max_position_embeddings = 32768;
  double rope_theta = 1e6;
  RopeScaling rope_scaling;
  bool qkv_bias = true;      // biases on q_proj, k_proj, v_proj (qwen2; llama/qwen3: attention_bias)
  bool o_proj_bias = false;  // on o_proj (llama/qwen3: attention_bias)
  bool mlp_bias = false;     // on gate/up/down_proj (llama: mlp_bias)
  bool qk_norm = false;      // RMSNorm over each head of q and k before RoPE (qwen3)
  double rms_norm_eps = 1e-6;
  double initializer_range = 0.02;
  bool tie_word_embeddings = true;
  std::string dtype = "bfloat16";  // the checkpoint's stored dtype (torch_dtype / dtype)
  // Keys this struct does not model (bos/eos ids, C3's own keys, ...), kept for round trips.
  nlohmann::json extra = nlohmann::json::object();

  // `source` names the file in error messages. Throws c3::Error on missing/mistyped/unsupported keys.
  // A C3 checkpoint's root config.json (model_type "C3") is read as its decoder's, whose family
  // it records as c3_decoder_model_type (qwen2 when absent).
  static Qwen2Config from_json(const nlohmann::json& j, const std::string& source);
  nlohmann::json to_json() const;

  // Parameter count, tied embeddings counted once.
  int64_t parameter_count() const;
  // Bytes of keys + values per token of context, for one sequence, at `bytes_per_element`.
  int64_t kv_cache_bytes_per_token(int64_t bytes_per_element) const;

  // The sizes of the released Qwen2.5 models, and a tiny one for tests and demos.
  static Qwen2Config preset(const std::string& name);  // "tiny", "0.5b", "1.5b", "3b"

 private:
  static Qwen2Config read(const nlohmann::json& j, const std::string& source);
};

}  // namespace c3
