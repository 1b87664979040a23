#include "c3/model/qwen2_config.h"

#include "c3/io/checkpoint_dir.h"
#include "c3/util/error.h"

namespace c3 {
namespace {

using nlohmann::json;

// Reads config keys with type checks; every error names the file and the key.
class Reader {
 public:
  Reader(const json& j, std::string source) : j_(j), source_(std::move(source)) {}

  int64_t integer(const char* key, int64_t fallback, bool required) {
    const json* v = find(key, required);
    if (!v || v->is_null()) return fallback;
    if (!v->is_number_integer()) wrong(key, "an integer", *v);
    return v->get<int64_t>();
  }
  double number(const json& obj, const char* key, double fallback) {
    if (!obj.contains(key) || obj[key].is_null()) return fallback;
    if (!obj[key].is_number()) wrong(key, "a number", obj[key]);
    return obj[key].get<double>();
  }
  bool boolean(const char* key, bool fallback) {
    const json* v = find(key, false);
    if (!v || v->is_null()) return fallback;
    if (!v->is_boolean()) wrong(key, "true or false", *v);
    return v->get<bool>();
  }
  std::string string(const char* key, const std::string& fallback) {
    const json* v = find(key, false);
    if (!v || v->is_null()) return fallback;
    if (!v->is_string()) wrong(key, "a string", *v);
    return v->get<std::string>();
  }
  [[noreturn]] void fail(const std::string& problem) { fail_file(source_, problem); }

 private:
  const json* find(const char* key, bool required) {
    if (j_.contains(key)) return &j_[key];
    if (required) fail(std::string("missing required key '") + key + "'");
    return nullptr;
  }
  [[noreturn]] void wrong(const char* key, const char* expected, const json& got) {
    fail(std::string("'") + key + "' must be " + expected + ", got " + got.dump());
  }
  const json& j_;
  std::string source_;
};

// Keys from_json models; everything else goes to `extra`.
const char* const kModelled[] = {"model_type",
                                 "c3_decoder_model_type",
                                 "vocab_size",
                                 "hidden_size",
                                 "intermediate_size",
                                 "num_hidden_layers",
                                 "num_attention_heads",
                                 "num_key_value_heads",
                                 "head_dim",
                                 "max_position_embeddings",
                                 "rope_theta",
                                 "rope_parameters",
                                 "rms_norm_eps",
                                 "initializer_range",
                                 "tie_word_embeddings",
                                 "torch_dtype",
                                 "dtype",
                                 "layer_types",
                                 "use_sliding_window",
                                 "rope_scaling",
                                 "hidden_act",
                                 "attention_bias",
                                 "mlp_bias"};

// The families whose blocks c3 runs, and the class transformers builds for each.
const std::pair<const char*, const char*> kFamilies[] = {{"qwen2", "Qwen2ForCausalLM"},
                                                         {"llama", "LlamaForCausalLM"},
                                                         {"qwen3", "Qwen3ForCausalLM"},
                                                         {"mistral", "MistralForCausalLM"}};

const char* architecture_of(const std::string& model_type) {
  for (const auto& [type, architecture] : kFamilies)
    if (model_type == type) return architecture;
  return nullptr;
}

// RoPE frequency scaling from rope_parameters (transformers 5) or rope_scaling (4): default or llama3.
void read_rope_scaling(Reader& r, const json& params, const std::string& where, RopeScaling& out) {
  if (!params.is_object()) return;
  std::string type = "default";
  for (const char* k : {"type", "rope_type"})
    if (params.contains(k) && params[k].is_string()) type = params[k].get<std::string>();
  if (type == "default") return;
  if (type != "llama3") r.fail(where + " type '" + type + "' is not supported (c3 implements default and llama3 RoPE)");
  out.type = type;
  out.factor = r.number(params, "factor", out.factor);
  out.low_freq_factor = r.number(params, "low_freq_factor", out.low_freq_factor);
  out.high_freq_factor = r.number(params, "high_freq_factor", out.high_freq_factor);
  out.original_max_position_embeddings = static_cast<int64_t>(
      r.number(params, "original_max_position_embeddings", static_cast<double>(out.original_max_position_embeddings)));
  if (!(out.factor > 0) || !(out.high_freq_factor > out.low_freq_factor) || !(out.low_freq_factor > 0) ||
      out.original_max_position_embeddings <= 0)
    r.fail(where +
           ": llama3 RoPE needs factor > 0, 0 < low_freq_factor < high_freq_factor and "
           "original_max_position_embeddings > 0");
}

}  // namespace

Qwen2Config Qwen2Config::from_json(const json& j, const std::string& source) {
  return io::with_json_errors(source, [&] { return read(j, source); });
}

Qwen2Config Qwen2Config::read(const json& j, const std::string& source) {
  if (!j.is_object()) fail_file(source, "config is not a JSON object");
  Reader r(j, source);
  Qwen2Config c;
  c.model_type = r.string("model_type", "qwen2");
  if (c.model_type == "C3") c.model_type = r.string("c3_decoder_model_type", "qwen2");
  if (!architecture_of(c.model_type))
    r.fail("model_type '" + c.model_type + "' is not supported (c3 runs qwen2, llama, qwen3 and mistral)");
  c.vocab_size = r.integer("vocab_size", 0, true);
  c.hidden_size = r.integer("hidden_size", 0, true);
  c.intermediate_size = r.integer("intermediate_size", 0, true);
  c.num_hidden_layers = r.integer("num_hidden_layers", 0, true);
  c.num_attention_heads = r.integer("num_attention_heads", 0, true);
  c.num_key_value_heads = r.integer("num_key_value_heads", c.num_attention_heads, false);
  c.max_position_embeddings = r.integer("max_position_embeddings", c.max_position_embeddings, false);
  c.rms_norm_eps = r.number(j, "rms_norm_eps", c.rms_norm_eps);
  c.initializer_range = r.number(j, "initializer_range", c.initializer_range);
  c.tie_word_embeddings = r.boolean("tie_word_embeddings", false);  // HF's Qwen2Config default
  c.dtype = r.string("dtype", r.string("torch_dtype", "float32"));

  const std::pair<const char*, int64_t> sizes[] = {{"vocab_size", c.vocab_size},
                                                   {"hidden_size", c.hidden_size},
                                                   {"intermediate_size", c.intermediate_size},
                                                   {"num_hidden_layers", c.num_hidden_layers},
                                                   {"num_attention_heads", c.num_attention_heads},
                                                   {"num_key_value_heads", c.num_key_value_heads}};
  for (const auto& [key, value] : sizes) {
    if (value <= 0) r.fail(std::string("'") + key + "' must be positive");
  }
  if (c.num_attention_heads % c.num_key_value_heads != 0)
    r.fail("num_attention_heads (" + std::to_string(c.num_attention_heads) +
           ") must be a multiple of num_key_value_heads (" + std::to_string(c.num_key_value_heads) + ")");
  // Qwen3's config class defaults head_dim to 128; the others derive it (also from an explicit null).
  const bool head_dim_given = j.contains("head_dim") && !j["head_dim"].is_null();
  const bool qwen3_default = c.model_type == "qwen3" && !j.contains("head_dim");
  c.head_dim = r.integer("head_dim", qwen3_default ? 128 : c.hidden_size / c.num_attention_heads, false);
  if (!head_dim_given && !qwen3_default && c.hidden_size % c.num_attention_heads != 0)
    r.fail("hidden_size must be a multiple of num_attention_heads when head_dim is not given");
  if (c.head_dim <= 0 || c.head_dim % 2 != 0) r.fail("head_dim must be positive and even (RoPE pairs halves)");

  // rope_theta: transformers-5 keeps it in rope_parameters; transformers-4 at the top level.
  if (c.model_type != "qwen2") c.rope_theta = 10000.0;  // their config classes' default
  c.rope_theta = r.number(j, "rope_theta", c.rope_theta);
  if (j.contains("rope_parameters") && !j["rope_parameters"].is_null()) {
    const json& rp = j["rope_parameters"];
    if (!rp.is_object()) r.fail("'rope_parameters' must be an object");
    read_rope_scaling(r, rp, "rope_parameters", c.rope_scaling);
    c.rope_theta = r.number(rp, "rope_theta", c.rope_theta);
  }
  if (j.contains("rope_scaling")) read_rope_scaling(r, j["rope_scaling"], "rope_scaling", c.rope_scaling);
  if (c.rope_theta <= 0) r.fail("rope_theta must be positive");

  // What tells the families' blocks apart (HF's modeling_*.py): qwen2 has q/k/v biases; llama and
  // qwen3 put attention_bias on all four projections, llama mlp_bias on the MLP; qwen3 normalises
  // each head of q and k.
  if (c.model_type != "qwen2") {
    const bool attention_bias = c.model_type != "mistral" && r.boolean("attention_bias", false);
    c.qkv_bias = c.o_proj_bias = attention_bias;
    c.mlp_bias = c.model_type == "llama" && r.boolean("mlp_bias", false);
  }
  c.qk_norm = c.model_type == "qwen3";

  if (r.string("hidden_act", "silu") != "silu")
    r.fail("hidden_act '" + r.string("hidden_act", "") + "' is not supported (only silu)");
  if (r.boolean("use_sliding_window", false)) r.fail("sliding-window attention (use_sliding_window) is not supported");
  if (c.model_type == "mistral" && j.contains("sliding_window") && !j["sliding_window"].is_null())
    r.fail("sliding-window attention (sliding_window " + j["sliding_window"].dump() + ") is not supported");
  if (j.contains("layer_types") && !j["layer_types"].is_null()) {
    const json& lt = j["layer_types"];
    if (!lt.is_array() || static_cast<int64_t>(lt.size()) != c.num_hidden_layers)
      r.fail("'layer_types' must list one type per layer (" + std::to_string(c.num_hidden_layers) + ")");
    for (const auto& t : lt) {
      if (t != "full_attention") r.fail("layer type " + t.dump() + " is not supported (only full_attention)");
    }
  }

  for (auto it = j.begin(); it != j.end(); ++it) {
    bool modelled = false;
    for (const char* k : kModelled) modelled = modelled || it.key() == k;
    if (!modelled) c.extra[it.key()] = it.value();
  }
  return c;
}

json Qwen2Config::to_json() const {
  json j = extra;
  j["architectures"] = j.value("architectures", json::array({architecture_of(model_type)}));
  j["model_type"] = model_type;
  j["vocab_size"] = vocab_size;
  j["hidden_size"] = hidden_size;
  j["intermediate_size"] = intermediate_size;
  j["num_hidden_layers"] = num_hidden_layers;
  j["num_attention_heads"] = num_attention_heads;
  j["num_key_value_heads"] = num_key_value_heads;
  if (head_dim != hidden_size / num_attention_heads) j["head_dim"] = head_dim;
  j["max_position_embeddings"] = max_position_embeddings;
  j["rope_theta"] = rope_theta;
  j["rms_norm_eps"] = rms_norm_eps;
  j["initializer_range"] = initializer_range;
  j["tie_word_embeddings"] = tie_word_embeddings;
  j["torch_dtype"] = dtype;
  j["hidden_act"] = "silu";
  j["use_sliding_window"] = false;
  // The family's own keys; a qwen2 config is written as before (its fingerprints stay).
  if (model_type == "llama" || model_type == "qwen3") j["attention_bias"] = o_proj_bias;
  if (model_type == "llama") j["mlp_bias"] = mlp_bias;
  if (model_type == "qwen3") j["head_dim"] = head_dim;
  if (model_type == "mistral") j["sliding_window"] = nullptr;
  if (rope_scaling.type != "default")
    j["rope_scaling"] = {{"rope_type", rope_scaling.type},
                         {"factor", rope_scaling.factor},
                         {"low_freq_factor", rope_scaling.low_freq_factor},
                         {"high_freq_factor", rope_scaling.high_freq_factor},
                         {"original_max_position_embeddings", rope_scaling.original_max_position_embeddings}};
  return j;
}

int64_t Qwen2Config::parameter_count() const {
  const int64_t q = num_attention_heads * head_dim, kv = num_key_value_heads * head_dim;
  const int64_t attn = hidden_size * q + 2 * hidden_size * kv + q * hidden_size + (qkv_bias ? q + 2 * kv : 0) +
                       (o_proj_bias ? hidden_size : 0) + (qk_norm ? 2 * head_dim : 0);
  const int64_t mlp = 3 * hidden_size * intermediate_size + (mlp_bias ? 2 * intermediate_size + hidden_size : 0);
  const int64_t layer = attn + mlp + 2 * hidden_size;
  const int64_t embed = vocab_size * hidden_size;
  return embed + num_hidden_layers * layer + hidden_size + (tie_word_embeddings ? 0 : embed);
}

int64_t Qwen2Config::kv_cache_bytes_per_token(int64_t bytes_per_element) const {
  return 2 * num_hidden_layers * num_key_value_heads * head_dim * bytes_per_element;
}

Qwen2Config Qwen2Config::preset(const std::string& name) {
  Qwen2Config c;  // defaults are 0.5B
  c.tie_word_embeddings = true;
  if (name == "0.5b") return c;
  if (name == "1.5b") {
    c.hidden_size = 1536, c.intermediate_size = 8960, c.num_hidden_layers = 28;
    c.num_attention_heads = 12, c.num_key_value_heads = 2, c.head_dim = 128;
    return c;
  }
  if (name == "3b") {
    c.hidden_size = 2048, c.intermediate_size = 11008, c.num_hidden_layers = 36;
    c.num_attention_heads = 16, c.num_key_value_heads = 2, c.head_dim = 128;
    return c;
  }
  if (name == "tiny") {
    c.vocab_size = 512, c.hidden_size = 64, c.intermediate_size = 176, c.num_hidden_layers = 2;
    c.num_attention_heads = 4, c.num_key_value_heads = 2, c.head_dim = 16;
    c.max_position_embeddings = 2048;
    c.dtype = "float32";
    return c;
  }
  throw UsageError("unknown model preset '" + name + "' (choose tiny, 0.5b, 1.5b or 3b)");
}

}  // namespace c3
