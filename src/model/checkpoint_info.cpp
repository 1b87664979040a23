#include "c3/model/checkpoint_info.h"

#include <cstdio>
#include <sstream>

#include "c3/io/checkpoint_dir.h"
#include "c3/model/qwen2_config.h"

namespace fs = std::filesystem;
using nlohmann::json;

namespace c3 {
namespace {

// Training memory per parameter in the recipe c3 trains with: bf16 weights (2) and gradients (2),
// fp32 master weights (4), AdamW first and second moments in fp32 (8). Activations excluded.
constexpr int64_t kTrainBytesPerParameter = 16;

json describe_qwen2(const io::CheckpointDir& ckpt) {
  const Qwen2Config c = Qwen2Config::from_json(ckpt.config(), ckpt.config_path().string());
  json out;
  out["path"] = ckpt.dir().string();
  out["model_type"] = ckpt.config().value("model_type", std::string("qwen2"));
  out["config"] = {{"vocab_size", c.vocab_size},
                   {"hidden_size", c.hidden_size},
                   {"intermediate_size", c.intermediate_size},
                   {"num_hidden_layers", c.num_hidden_layers},
                   {"num_attention_heads", c.num_attention_heads},
                   {"num_key_value_heads", c.num_key_value_heads},
                   {"head_dim", c.head_dim},
                   {"rope_theta", c.rope_theta},
                   {"rms_norm_eps", c.rms_norm_eps},
                   {"tie_word_embeddings", c.tie_word_embeddings},
                   {"dtype", c.dtype}};
  int64_t parameters = 0, stored_bytes = 0, tensors = 0;
  json dtypes = json::object();
  for (const auto& name : ckpt.tensor_names()) {
    const io::TensorInfo& t = ckpt.tensor(name);
    const std::string dt(io::dtype_name(t.dtype));
    if (!dtypes.contains(dt)) dtypes[dt] = {{"tensors", 0}, {"bytes", 0}};
    dtypes[dt]["tensors"] = dtypes[dt]["tensors"].get<int64_t>() + 1;
    dtypes[dt]["bytes"] = dtypes[dt]["bytes"].get<int64_t>() + static_cast<int64_t>(t.nbytes());
    stored_bytes += static_cast<int64_t>(t.nbytes());
    ++tensors;
    const bool tied_copy = c.tie_word_embeddings && name == "lm_head.weight";  // counted once
    const bool buffer = name.find("rotary_emb.inv_freq") != std::string::npos;
    if (!tied_copy && !buffer) parameters += t.numel();
  }
  json files = json::array();
  for (const auto& f : ckpt.files()) files.push_back(f.filename().string());
  out["parameters"] = parameters;
  out["parameters_from_config"] = c.parameter_count();
  out["tensors"] = tensors;
  out["files"] = files;
  out["dtypes"] = dtypes;
  out["stored_bytes"] = stored_bytes;
  out["tokenizer_files"] = ckpt.tokenizer_files();
  out["kv_cache_bf16_bytes_per_token"] = c.kv_cache_bytes_per_token(2);
  return out;
}

json memory_estimate(int64_t parameters, int64_t kv_bytes_per_token) {
  const int64_t weights = 2 * parameters;
  const int64_t kv = kv_bytes_per_token * kInfoContextTokens;
  return {{"run_bytes", weights + kv},
          {"run_weights_bf16_bytes", weights},
          {"run_kv_cache_bytes", kv},
          {"run_context_tokens", kInfoContextTokens},
          {"train_bytes", kTrainBytesPerParameter * parameters},
          {"train_bytes_per_parameter", kTrainBytesPerParameter},
          {"train_note", "bf16 weights and gradients, fp32 master weights and AdamW moments; activations excluded"}};
}

std::string fmt_double(const char* f, double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, f, v);
  return buf;
}

void format_model(std::ostringstream& s, const json& m, const std::string& indent) {
  const json& c = m["config"];
  s << indent << "path          " << m["path"].get<std::string>() << "\n";
  s << indent << "architecture  " << m["model_type"].get<std::string>() << ": " << c["num_hidden_layers"]
    << " layers, hidden " << c["hidden_size"] << ", intermediate " << c["intermediate_size"] << ", "
    << c["num_attention_heads"] << " heads (" << c["num_key_value_heads"] << " kv, head_dim " << c["head_dim"]
    << "), vocab " << c["vocab_size"] << ", rope_theta " << fmt_double("%g", c["rope_theta"].get<double>())
    << (c["tie_word_embeddings"].get<bool>() ? ", tied embeddings" : ", untied lm_head") << "\n";
  s << indent << "parameters    " << human_count(m["parameters"].get<int64_t>()) << " ("
    << m["parameters"].get<int64_t>() << ")\n";
  std::string files;
  for (const auto& f : m["files"]) files += (files.empty() ? "" : ", ") + f.get<std::string>();
  s << indent << "tensors       " << m["tensors"] << " in " << m["files"].size() << " file(s): " << files << "\n";
  std::string dts;
  for (auto it = m["dtypes"].begin(); it != m["dtypes"].end(); ++it)
    dts += (dts.empty() ? "" : "; ") + it.key() + " " + std::to_string(it.value()["tensors"].get<int>()) +
           " tensors, " + human_bytes(it.value()["bytes"].get<double>());
  s << indent << "dtypes        " << dts << "\n";
  std::string tok;
  for (const auto& f : m["tokenizer_files"]) tok += (tok.empty() ? "" : ", ") + f.get<std::string>();
  s << indent << "tokenizer     " << (tok.empty() ? "no tokenizer files found" : tok) << "\n";
}

// What the model was trained to reconstruct, in the terms compress and eval use: texts of up to N
// tokens, which is also the span they cut longer texts into.
std::string trained_lengths_line(const json& text_tokens, const json& window) {
  const std::string in_window =
      window.is_number() ? " (in a window of " + window.dump() + " tokens with the prompt)" : std::string();
  if (text_tokens.is_number())
    return "texts of up to " + text_tokens.dump() + " tokens" + in_window +
           ": compress and eval cut longer texts into " + text_tokens.dump() + "-token spans";
  if (window.is_number())
    return "windows of up to " + window.dump() +
           " tokens with the prompt (the longest text is not recorded, c3_max_text_tokens): compress and eval cut "
           "longer "
           "texts into spans of what the window leaves";
  return "an unrecorded length (no c3_max_length or c3_max_text_tokens): compress and eval assume a window of 8192 "
         "tokens";
}

}  // namespace

json describe_checkpoint(const fs::path& dir) {
  io::CheckpointDir root(dir);
  json info = describe_qwen2(root);
  int64_t parameters = info["parameters"];
  int64_t kv_per_token = info["kv_cache_bf16_bytes_per_token"];
  if (info["model_type"] == "C3") {
    io::CheckpointDir encoder(dir / "llm1");
    json enc = describe_qwen2(encoder);
    info["encoder"] = enc;
    info["latent_token_len"] = root.config().value("latent_token_len", json());
    // What running it needs: the longest text it was trained on (compress cuts longer texts into
    // spans of that size), and the dtype c3 runs it in unless told otherwise.
    info["trained_max_length"] = root.config().value("c3_max_length", json());
    info["trained_max_text_tokens"] = root.config().value("c3_max_text_tokens", json());
    parameters += enc["parameters"].get<int64_t>();
    kv_per_token += enc["kv_cache_bf16_bytes_per_token"].get<int64_t>();
  }
  info["parameters"] = parameters;
  info["memory"] = memory_estimate(parameters, kv_per_token);
  return info;
}

std::string format_checkpoint_info(const json& info) {
  std::ostringstream s;
  format_model(s, info, "");
  if (info.contains("encoder")) {
    s << "encoder (llm1/)\n";
    format_model(s, info["encoder"], "  ");
    s << "total         " << human_count(info["parameters"].get<int64_t>()) << " parameters, "
      << info["latent_token_len"].dump() << " latent tokens\n";
    s << "trained on    " << trained_lengths_line(info["trained_max_text_tokens"], info["trained_max_length"]) << "\n";
    s << "runs in       float32 on the CPU, bfloat16 on CUDA (--dtype chooses); compress writes latents in the same "
         "(--latent-dtype)\n";
  }
  const json& m = info["memory"];
  s << "memory, run   " << human_bytes(m["run_bytes"].get<double>()) << " = "
    << human_bytes(m["run_weights_bf16_bytes"].get<double>()) << " bf16 weights + "
    << human_bytes(m["run_kv_cache_bytes"].get<double>()) << " bf16 KV cache for " << m["run_context_tokens"]
    << " tokens\n";
  s << "memory, train " << human_bytes(m["train_bytes"].get<double>()) << " (" << m["train_bytes_per_parameter"]
    << " B/parameter: " << m["train_note"].get<std::string>() << ")\n";
  return s.str();
}

std::string human_bytes(double bytes) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  int u = 0;
  while (bytes >= 1024.0 && u < 4) bytes /= 1024.0, ++u;
  return fmt_double(u == 0 ? "%.0f " : "%.1f ", bytes) + units[u];
}

std::string human_count(int64_t count) {
  const char* units[] = {"", "K", "M", "B", "T"};
  double v = static_cast<double>(count);
  int u = 0;
  while (v >= 1000.0 && u < 4) v /= 1000.0, ++u;
  return u == 0 ? std::to_string(count) : fmt_double("%.2f", v) + units[u];
}

}  // namespace c3
