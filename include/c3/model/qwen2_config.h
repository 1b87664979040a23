// The Qwen2 architecture as Hugging Face's config.json describes it. Reads both the
// transformers-4 spelling (torch_dtype, rope_theta) and the transformers-5 one (dtype,
// rope_parameters, layer_types); writes the transformers-4 spelling, which both versions read.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>

namespace c3 {

struct Qwen2Config {
  int64_t vocab_size = 151936;
  int64_t hidden_size = 896;
  int64_t intermediate_size = 4864;
  int64_t num_hidden_layers = 24;
  int64_t num_attention_heads = 14;
  int64_t num_key_value_heads = 2;
  int64_t head_dim = 64;  // hidden_size / num_attention_heads unless config.json says otherwise
  int64_t max_position_embeddings = 32768;
  double rope_theta = 1e6;
  double rms_norm_eps = 1e-6;
  double initializer_range = 0.02;
  bool tie_word_embeddings = true;
  std::string dtype = "bfloat16";  // the checkpoint's stored dtype (torch_dtype / dtype)
  // Keys this struct does not model (bos/eos ids, C3's own keys, ...), kept for round trips.
  nlohmann::json extra = nlohmann::json::object();

  // `source` names the file in error messages. Throws c3::Error on missing/mistyped/unsupported keys.
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
