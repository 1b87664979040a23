#include "c3/model/gguf_import.h"

#include <spdlog/spdlog.h>

#include <map>
#include <optional>
#include <regex>
#include <set>

#include "c3/model/qwen2_io.h"
#include "c3/tokenizer/unicode.h"
#include "c3/util/error.h"

namespace c3 {
namespace {

using nlohmann::json;

// The GGUF architectures c3 imports, and the family each is.
const std::pair<const char*, const char*> kArchitectures[] = {
    {"llama", "llama"}, {"qwen2", "qwen2"}, {"qwen3", "qwen3"}};

// A metadata value in a message: JSON, ill-formed UTF-8 replaced, cut short.
std::string shown(const json& value) {
  return value.dump(-1, ' ', false, json::error_handler_t::replace).substr(0, 40);
}

// A metadata value, checked for its type; errors name the file and the key.
class Metadata {
 public:
  Metadata(const io::GgufReader& gguf, std::string arch) : gguf_(gguf), arch_(std::move(arch)) {}
  int64_t integer(const std::string& key, std::optional<int64_t> fallback = std::nullopt) const {
    const json* v = find(key);
    if (!v) return required(key, fallback);
    if (!v->is_number_integer()) wrong(key, "an integer", *v);
    return v->get<int64_t>();
  }
  double number(const std::string& key, double fallback) const {
    const json* v = find(key);
    if (!v) return fallback;
    if (!v->is_number()) wrong(key, "a number", *v);
    return v->get<double>();
  }
  const json* find(const std::string& key) const {
    const std::string full = arch_ + "." + key;
    return gguf_.metadata().contains(full) ? &gguf_.metadata()[full] : nullptr;
  }
  [[noreturn]] void fail(const std::string& problem) const { fail_file(gguf_.path().string(), problem); }

 private:
  int64_t required(const std::string& key, std::optional<int64_t> fallback) const {
    if (!fallback) fail("missing the metadata key '" + arch_ + "." + key + "'");
    return *fallback;
  }
  [[noreturn]] void wrong(const std::string& key, const char* expected, const json& got) const {
    fail("metadata '" + arch_ + "." + key + "' must be " + expected + ", got " + shown(got));
  }
  const io::GgufReader& gguf_;
  std::string arch_;
};

std::string architecture(const io::GgufReader& gguf) {
  const json& meta = gguf.metadata();
  if (!meta.contains("general.architecture") || !meta["general.architecture"].is_string())
    fail_file(gguf.path().string(), "no general.architecture in its metadata");
  return meta["general.architecture"].get<std::string>();
}

// llama.cpp's converter reorders each head's Q and K rows (LlamaModel.permute); this puts them back
// as transformers' reverse_permute_weights does.
at::Tensor unpermute(const at::Tensor& w, int64_t heads) {
  const int64_t half = w.size(0) / heads / 2;
  std::vector<int64_t> shape{heads, half, 2};
  for (int64_t d = 1; d < w.dim(); ++d) shape.push_back(w.size(d));
  return w.reshape(shape).transpose(1, 2).reshape(w.sizes());
}

}  // namespace

std::string hf_tensor_name(const std::string& name) {
  static const std::map<std::string, std::string> top{{"token_embd.weight", "model.embed_tokens.weight"},
                                                      {"output_norm.weight", "model.norm.weight"},
                                                      {"output.weight", "lm_head.weight"}};
  static const std::map<std::string, std::string> block{
      {"attn_norm", "input_layernorm"},    {"ffn_norm", "post_attention_layernorm"},
      {"attn_q", "self_attn.q_proj"},      {"attn_k", "self_attn.k_proj"},
      {"attn_v", "self_attn.v_proj"},      {"attn_output", "self_attn.o_proj"},
      {"attn_q_norm", "self_attn.q_norm"}, {"attn_k_norm", "self_attn.k_norm"},
      {"ffn_gate", "mlp.gate_proj"},       {"ffn_up", "mlp.up_proj"},
      {"ffn_down", "mlp.down_proj"}};
  if (const auto it = top.find(name); it != top.end()) return it->second;
  static const std::regex pattern(R"(blk\.(\d+)\.(\w+)\.(weight|bias))");
  std::smatch m;
  if (!std::regex_match(name, m, pattern)) return "";
  const auto it = block.find(m[2].str());
  return it == block.end() ? "" : "model.layers." + m[1].str() + "." + it->second + "." + m[3].str();
}

Qwen2Config gguf_model_config(const io::GgufReader& gguf) {
  const std::string arch = architecture(gguf);
  const char* family = nullptr;
  for (const auto& [name, type] : kArchitectures)
    if (arch == name) family = type;
  const Metadata meta(gguf, arch);
  if (!family) meta.fail("architecture '" + arch + "' is not supported (c3 imports llama, qwen2 and qwen3)");
  if (gguf.find("rope_freqs.weight"))
    meta.fail("holds rope_freqs.weight (Llama 3.1's RoPE scaling as a tensor), which c3 does not import yet");
  if (const json* scaling = meta.find("rope.scaling.type"); scaling && *scaling != "none")
    meta.fail("RoPE scaling " + shown(*scaling) + " is not supported");
  const io::GgufTensor* embed = gguf.find("token_embd.weight");
  if (!embed || embed->shape.size() != 2) meta.fail("no 2-D token_embd.weight");

  Qwen2Config c;
  c.model_type = family;
  c.vocab_size = embed->shape[0];
  c.hidden_size = meta.integer("embedding_length");
  c.intermediate_size = meta.integer("feed_forward_length");
  c.num_hidden_layers = meta.integer("block_count");
  c.num_attention_heads = meta.integer("attention.head_count");
  c.num_key_value_heads = meta.integer("attention.head_count_kv", c.num_attention_heads);
  if (c.hidden_size <= 0 || c.num_attention_heads <= 0 || c.num_key_value_heads <= 0 ||
      c.num_attention_heads % c.num_key_value_heads != 0 || c.num_hidden_layers <= 0 || c.intermediate_size <= 0)
    meta.fail("impossible geometry: hidden " + std::to_string(c.hidden_size) + ", " +
              std::to_string(c.num_attention_heads) + " heads, " + std::to_string(c.num_key_value_heads) +
              " KV heads, " + std::to_string(c.num_hidden_layers) + " layers");
  c.head_dim = meta.integer("attention.key_length", c.hidden_size / c.num_attention_heads);
  if (c.head_dim <= 0 || c.head_dim % 2 != 0)
    meta.fail("head_dim " + std::to_string(c.head_dim) + " is not positive and even");
  c.max_position_embeddings = meta.integer("context_length", 2048);
  c.rope_theta = meta.number("rope.freq_base", 10000.0);
  c.rms_norm_eps = meta.number("attention.layer_norm_rms_epsilon", 1e-6);
  c.tie_word_embeddings = gguf.find("output.weight") == nullptr;
  c.qkv_bias = gguf.find("blk.0.attn_q.bias") != nullptr;
  c.o_proj_bias = gguf.find("blk.0.attn_output.bias") != nullptr;
  if (c.model_type == "qwen2" && (!c.qkv_bias || c.o_proj_bias))
    meta.fail("a qwen2 model without q/k/v biases (or with an o_proj bias)");
  if (c.model_type != "qwen2" && c.qkv_bias != c.o_proj_bias) meta.fail("attention biases on some projections only");
  c.mlp_bias = gguf.find("blk.0.ffn_up.bias") != nullptr;
  if (c.mlp_bias && c.model_type != "llama") meta.fail("MLP biases, which " + arch + " does not have");
  c.qk_norm = c.model_type == "qwen3";
  c.dtype = "float32";
  for (const char* id : {"bos_token_id", "eos_token_id", "padding_token_id"}) {
    const std::string key = std::string("tokenizer.ggml.") + id;
    if (gguf.metadata().contains(key) && gguf.metadata()[key].is_number_integer())
      c.extra[std::string(id) == "padding_token_id" ? "pad_token_id" : id] = gguf.metadata()[key];
  }
  return c;
}

std::vector<std::pair<std::string, at::Tensor>> gguf_model_tensors(const io::GgufReader& gguf, const Qwen2Config& c) {
  std::vector<std::pair<std::string, at::Tensor>> out;
  const std::string source = gguf.path().string();
  for (const auto& t : gguf.tensors()) {
    const std::string name = hf_tensor_name(t.name);
    if (name.empty()) fail_file(source, "tensor '" + t.name + "' has no place in a " + c.model_type + " model");
    at::Tensor w = io::dequantize(t, source);
    if (c.model_type == "llama" &&
        (t.name.find(".attn_q.") != std::string::npos || t.name.find(".attn_k.") != std::string::npos)) {
      const int64_t heads =
          t.name.find(".attn_q.") != std::string::npos ? c.num_attention_heads : c.num_key_value_heads;
      if (w.size(0) % (2 * heads) != 0)
        fail_file(source, "tensor '" + t.name + "' has " + std::to_string(w.size(0)) + " rows, not whole pairs for " +
                              std::to_string(heads) + " heads");
      w = unpermute(w, heads);
    }
    out.emplace_back(name, w);
  }
  return out;
}

namespace {

// The pre-tokenizer splits transformers' GGUF loader sets by tokenizer.ggml.pre (its
// GGUF_PRE_TOKENIZER_SPLITS, the ones c3 checks); other types keep ByteLevel's GPT-2 regex, as there.
const char* const kLlama3Split =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
const char* const kQwen2Split =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
const std::map<std::string, const char*> kPreTokenizerSplits{
    {"llama3", kLlama3Split},    {"llama-v3", kLlama3Split}, {"llama-bpe", kLlama3Split},
    {"smaug-bpe", kLlama3Split}, {"qwen2", kQwen2Split},     {"deepseek-r1-qwen", kQwen2Split}};

std::string spelled_in_byte_alphabet(const std::string& token) {
  std::string out;
  for (unsigned char b : token) out += unicode::byte_to_unicode()[b];
  return out;
}

json byte_level(bool add_prefix_space, bool use_regex) {
  return {
      {"type", "ByteLevel"}, {"add_prefix_space", add_prefix_space}, {"trim_offsets", true}, {"use_regex", use_regex}};
}

const json& array_of_strings(const io::GgufReader& gguf, const std::string& key) {
  const json& meta = gguf.metadata();
  if (!meta.contains(key) || !meta[key].is_array())
    fail_file(gguf.path().string(), "no " + key + " (the tokenizer's " + key.substr(key.rfind('.') + 1) + ")");
  for (const auto& v : meta[key])
    if (!v.is_string())
      fail_file(gguf.path().string(), key + " holds a " + std::string(v.type_name()) + ", not strings");
  return meta[key];
}

}  // namespace

std::map<std::string, std::string> gguf_tokenizer_files(const io::GgufReader& gguf) {
  const std::string source = gguf.path().string();
  const json& meta = gguf.metadata();
  const std::string model = meta.value("tokenizer.ggml.model", std::string());
  if (model.empty()) fail_file(source, "holds no tokenizer (tokenizer.ggml.model); import with --weights-only");
  if (model != "gpt2")
    fail_file(source, "tokenizer type '" + model +
                          "' is not converted (c3 converts byte-level BPE, 'gpt2'); "
                          "import with --weights-only to leave it out");
  const json& tokens = array_of_strings(gguf, "tokenizer.ggml.tokens");
  const json& merges = array_of_strings(gguf, "tokenizer.ggml.merges");
  const json types = meta.value("tokenizer.ggml.token_type", json::array());
  // Tokens spelled outside the byte-level alphabet are respelled from their UTF-8 bytes (as there).
  json vocab = json::object();
  for (size_t id = 0; id < tokens.size(); ++id) {
    const std::string& token = tokens[id].get_ref<const std::string&>();
    std::string bytes;
    vocab[unicode::unicode_to_bytes(token, &bytes) ? token : spelled_in_byte_alphabet(token)] = id;
  }
  json pairs = json::array();
  for (const auto& m : merges) {
    const std::string& merge = m.get_ref<const std::string&>();
    const size_t space = merge.find(' ');
    if (space == std::string::npos) fail_file(source, "merge '" + merge + "' is not two tokens");
    pairs.push_back({merge.substr(0, space), merge.substr(space + 1)});
  }
  // Control tokens (type 3) spelled in the byte alphabet are special added tokens; user-defined
  // ones (4) plain added tokens.
  json added = json::array();
  for (size_t id = 0; id < tokens.size() && id < types.size(); ++id) {
    const std::string& token = tokens[id].get_ref<const std::string&>();
    std::string bytes;
    const bool control = types[id] == 3 && unicode::unicode_to_bytes(token, &bytes);
    if (!control && types[id] != 4) continue;
    added.push_back({{"id", id},
                     {"content", token},
                     {"single_word", false},
                     {"lstrip", false},
                     {"rstrip", false},
                     {"normalized", false},
                     {"special", control}});
  }
  const std::string pre = meta.value("tokenizer.ggml.pre", std::string());
  const auto split = kPreTokenizerSplits.find(pre);
  const json pre_tokenizer = split == kPreTokenizerSplits.end() ? byte_level(false, true)
                                                                : json{{"type", "Sequence"},
                                                                       {"pretokenizers",
                                                                        {{{"type", "Split"},
                                                                          {"pattern", {{"Regex", split->second}}},
                                                                          {"behavior", "Isolated"},
                                                                          {"invert", false}},
                                                                         byte_level(false, false)}}};
  const json tokenizer = {
      {"version", "1.0"},
      {"truncation", nullptr},
      {"padding", nullptr},
      {"added_tokens", added},
      {"normalizer", nullptr},
      {"pre_tokenizer", pre_tokenizer},
      {"post_processor",
       {{"type", "TemplateProcessing"},
        {"single", {{{"Sequence", {{"id", "A"}, {"type_id", 0}}}}}},
        {"pair", {{{"Sequence", {{"id", "A"}, {"type_id", 0}}}}, {{"Sequence", {{"id", "B"}, {"type_id", 1}}}}}},
        {"special_tokens", json::object()}}},
      {"decoder", byte_level(true, true)},
      {"model",
       {{"type", "BPE"},
        {"dropout", nullptr},
        {"unk_token", nullptr},
        {"continuing_subword_prefix", ""},
        {"end_of_word_suffix", ""},
        {"fuse_unk", false},
        {"byte_fallback", false},
        {"ignore_merges", false},
        {"vocab", vocab},
        {"merges", pairs}}}};
  json config = {{"tokenizer_class", "PreTrainedTokenizerFast"}};
  const std::pair<const char*, const char*> specials[] = {{"bos_token", "bos_token_id"},
                                                          {"eos_token", "eos_token_id"},
                                                          {"unk_token", "unknown_token_id"},
                                                          {"pad_token", "padding_token_id"}};
  for (const auto& [name, key] : specials) {
    const std::string full = std::string("tokenizer.ggml.") + key;
    if (meta.contains(full) && meta[full].is_number_unsigned() && meta[full].get<uint64_t>() < tokens.size())
      config[name] = tokens[meta[full].get<size_t>()];
  }
  if (meta.contains("tokenizer.chat_template") && meta["tokenizer.chat_template"].is_string())
    config["chat_template"] = meta["tokenizer.chat_template"];
  for (const char* flag : {"add_bos_token", "add_eos_token"}) {
    const std::string full = std::string("tokenizer.ggml.") + flag;
    if (meta.contains(full) && meta[full].is_boolean()) config[flag] = meta[full];
  }
  const auto replace = json::error_handler_t::replace;
  return {{"tokenizer.json", tokenizer.dump(-1, ' ', false, replace) + "\n"},
          {"tokenizer_config.json", config.dump(2, ' ', false, replace) + "\n"}};
}

Qwen2Config import_gguf(const std::filesystem::path& path, const std::filesystem::path& dir,
                        const GgufImportOptions& options) {
  const io::GgufReader gguf(path);
  const Qwen2Config config = gguf_model_config(gguf);
  Qwen2ForCausalLM model(config, at::TensorOptions().dtype(at::kFloat));
  auto params = model->named_parameters(/*recurse=*/true);
  std::set<std::string> filled;
  torch::NoGradGuard no_grad;
  for (auto& [name, tensor] : gguf_model_tensors(gguf, config)) {
    at::Tensor* p = params.find(name);
    if (!p) fail_file(path.string(), "tensor " + name + " is not part of the model its metadata describes");
    if (p->sizes() != tensor.sizes())
      fail_file(path.string(), "tensor " + name + " has shape " + io::shape_string(tensor.sizes().vec()) +
                                   " but the model expects " + io::shape_string(p->sizes().vec()));
    p->copy_(tensor);
    filled.insert(name);
  }
  for (const auto& item : params)
    if (!filled.count(item.key())) fail_file(path.string(), "no tensor for " + item.key());
  SaveOptions save;
  save.dtype = options.dtype;
  save.overwrite = options.overwrite;
  if (!options.weights_only) save.extra_files = gguf_tokenizer_files(gguf);
  save_qwen2(model, dir, save);
  return config;
}

}  // namespace c3
