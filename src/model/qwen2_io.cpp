#include "c3/model/qwen2_io.h"

#include <cstring>
#include <nlohmann/json.hpp>
#include <set>

#include "c3/io/tensor_io.h"
#include "c3/util/atomic_file.h"
#include "c3/util/dtype.h"
#include "c3/util/error.h"

namespace fs = std::filesystem;

namespace c3 {
namespace {

bool starts_with(const std::string& s, const std::string& prefix) { return s.compare(0, prefix.size(), prefix) == 0; }

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

std::vector<int64_t> to_vector(at::IntArrayRef sizes) { return {sizes.begin(), sizes.end()}; }

}  // namespace

void load_parameters(torch::nn::Module& module, const io::CheckpointDir& ckpt, const LoadOptions& options) {
  torch::NoGradGuard no_grad;
  std::set<std::string> used;
  for (auto& item : module.named_parameters(/*recurse=*/true)) {
    const std::string name = options.prefix + item.key();
    at::Tensor& param = item.value();
    if (!ckpt.contains(name))
      fail_file(ckpt.dir().string(),
                "missing tensor '" + name + "' (shape " + io::shape_string(to_vector(param.sizes())) + ")");
    const io::TensorInfo& info = ckpt.tensor(name);
    const std::string file = ckpt.file_of(name).string();
    if (info.shape != to_vector(param.sizes()))
      fail_file(file, "tensor '" + name + "' has shape " + io::shape_string(info.shape) + " but the model expects " +
                          io::shape_string(to_vector(param.sizes())));
    io::copy_tensor(param, info, file);
    ckpt.evict(name);
    used.insert(name);
  }
  for (const std::string& name : ckpt.tensor_names()) {
    if (used.count(name) || !starts_with(name, options.prefix)) continue;
    bool ignored = ends_with(name, "rotary_emb.inv_freq");  // old checkpoints stored this buffer
    for (const auto& p : options.ignore_prefixes) ignored = ignored || starts_with(name, p);
    if (!ignored)
      fail_file(ckpt.file_of(name).string(), "unexpected tensor '" + name + "' (shape " +
                                                 io::shape_string(ckpt.tensor(name).shape) +
                                                 ") that the model does not have");
  }
}

Qwen2ForCausalLM load_qwen2(const fs::path& dir, const LoadOptions& options) {
  io::CheckpointDir ckpt(dir);
  Qwen2Config config = Qwen2Config::from_json(ckpt.config(), ckpt.config_path().string());
  const at::ScalarType type = options.dtype ? *options.dtype : scalar_type_from_name(config.dtype);
  Qwen2ForCausalLM model(config, at::TensorOptions().dtype(type).device(options.device));
  LoadOptions opts = options;
  // A tied checkpoint may still carry lm_head.weight (HF ignores it); the model has no such tensor.
  if (config.tie_word_embeddings) opts.ignore_prefixes.push_back(options.prefix + "lm_head.");
  load_parameters(*model, ckpt, opts);
  return model;
}

void save_qwen2(Qwen2ForCausalLM& model, const fs::path& dir, const SaveOptions& options) {
  std::vector<std::pair<std::string, at::Tensor>> tensors;
  at::ScalarType stored = at::kFloat;
  for (const auto& item : model->named_parameters(/*recurse=*/true)) {
    at::Tensor t = item.value().detach();
    if (options.dtype) t = t.to(*options.dtype);
    stored = t.scalar_type();
    tensors.emplace_back(item.key(), t);
  }
  Qwen2Config config = model->config();
  config.dtype = scalar_type_name(stored);
  AtomicDirectory out(dir, options.overwrite);
  io::write_safetensors_shards(tensors, out.staging(), options.max_shard_bytes);
  write_file_atomically(out.staging() / io::CheckpointDir::kConfigFile, config.to_json().dump(2) + "\n");
  for (const auto& [name, contents] : options.extra_files) write_file_atomically(out.staging() / name, contents);
  out.commit();
}

}  // namespace c3
