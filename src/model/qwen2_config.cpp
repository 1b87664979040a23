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
const char* const kModelled[] = {
    "vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads",
    "num_key_value_heads", "head_dim", "max_position_embeddings", "rope_theta", "rope_parameters",
    "rms_norm_eps", "initializer_range", "tie_word_embeddings", "torch_dtype", "dtype",
    "layer_types", "use_sliding_window", "rope_scaling", "hidden_act"};

}  // namespace

Qwen2Config Qwen2Config::from_json(const json& j, const std::string& source) {
  return io::with_json_errors(source, [&] { return read(j, source); });
}

Qwen2Config Qwen2Config::read(const json& j, const std::string& source) {
  if (!j.is_object()) fail_file(source, "config is not a JSON object");
  Reader r(j, source);
  Qwen2Config c;
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

  const std::pair<const char*, int64_t> sizes[] = {
      {"vocab_size", c.vocab_size}, {"hidden_size", c.hidden_size},
      {"intermediate_size", c.intermediate_size}, {"num_hidden_layers", c.num_hidden_layers},
      {"num_attention_heads", c.num_attention_heads}, {"num_key_value_heads", c.num_key_value_heads}};
  for (const auto& [key, value] : sizes) {
    if (value <= 0) r.fail(std::string("'") + key + "' must be positive");
  }
  if (c.num_attention_heads % c.num_key_value_heads != 0)
    r.fail("num_attention_heads (" + std::to_string(c.num_attention_heads) +
           ") must be a multiple of num_key_value_heads (" + std::to_string(c.num_key_value_heads) + ")");
  c.head_dim = r.integer("head_dim", c.hidden_size / c.num_attention_heads, false);
  if (!j.contains("head_dim") && c.hidden_size % c.num_attention_heads != 0)
    r.fail("hidden_size must be a multiple of num_attention_heads when head_dim is not given");
  if (c.head_dim <= 0 || c.head_dim % 2 != 0) r.fail("head_dim must be positive and even (RoPE pairs halves)");

  // rope_theta: transformers-5 keeps it in rope_parameters; transformers-4 at the top level.
  c.rope_theta = r.number(j, "rope_theta", c.rope_theta);
  auto check_rope_type = [&](const json& params, const char* where) {
    if (!params.is_object()) return;
    for (const char* k : {"rope_type", "type"}) {
      if (params.contains(k) && params[k].is_string() && params[k] != "default")
        r.fail(std::string(where) + " type '" + params[k].get<std::string>() + "' is not supported (only default RoPE)");
    }
  };
  if (j.contains("rope_parameters") && !j["rope_parameters"].is_null()) {
    const json& rp = j["rope_parameters"];
    if (!rp.is_object()) r.fail("'rope_parameters' must be an object");
    check_rope_type(rp, "rope_parameters");
    c.rope_theta = r.number(rp, "rope_theta", c.rope_theta);
  }
  if (j.contains("rope_scaling")) check_rope_type(j["rope_scaling"], "rope_scaling");
  if (c.rope_theta <= 0) r.fail("rope_theta must be positive");

  if (r.string("hidden_act", "silu") != "silu") r.fail("hidden_act must be 'silu' for Qwen2");
  if (r.boolean("use_sliding_window", false)) r.fail("sliding-window attention (use_sliding_window) is not supported");
  if (j.contains("layer_types") && !j["layer_types"].is_null()) {
    const json& lt = j["layer_types"];
    if (!lt.is_array() || static_cast<int64_t>(lt.size()) != c.num_hidden_layers)
      r.fail("'layer_types' must list one type per layer (" + std::to_string(c.num_hidden_layers) + ")");
    for (const auto& t : lt) {
      if (t != "full_attention")
        r.fail("layer type " + t.dump() + " is not supported (only full_attention)");
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
  j["architectures"] = j.value("architectures", json::array({"Qwen2ForCausalLM"}));
  j["model_type"] = j.value("model_type", std::string("qwen2"));
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
  return j;
}

int64_t Qwen2Config::parameter_count() const {
  const int64_t q = num_attention_heads * head_dim, kv = num_key_value_heads * head_dim;
  const int64_t attn = hidden_size * q + q + 2 * (hidden_size * kv + kv) + q * hidden_size;
  const int64_t mlp = 3 * hidden_size * intermediate_size;
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
