#include "c3/model/qwen2_io.h"

#include <cstring>
#include <nlohmann/json.hpp>
#include <set>

#include "c3/util/atomic_file.h"
#include "c3/util/error.h"

namespace fs = std::filesystem;

namespace c3 {
namespace {

bool starts_with(const std::string& s, const std::string& prefix) {
  return s.compare(0, prefix.size(), prefix) == 0;
}

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

std::vector<int64_t> to_vector(at::IntArrayRef sizes) { return {sizes.begin(), sizes.end()}; }

}  // namespace

at::ScalarType to_scalar_type(io::DType dtype, const std::string& context) {
  switch (dtype) {
    case io::DType::BOOL: return at::kBool;
    case io::DType::U8: return at::kByte;
    case io::DType::I8: return at::kChar;
    case io::DType::I16: return at::kShort;
    case io::DType::F16: return at::kHalf;
    case io::DType::BF16: return at::kBFloat16;
    case io::DType::I32: return at::kInt;
    case io::DType::F32: return at::kFloat;
    case io::DType::F64: return at::kDouble;
    case io::DType::I64: return at::kLong;
    default: break;
  }
  fail_file(context, "dtype " + std::string(io::dtype_name(dtype)) + " has no LibTorch equivalent");
}

io::DType to_dtype(at::ScalarType type) {
  switch (type) {
    case at::kBool: return io::DType::BOOL;
    case at::kByte: return io::DType::U8;
    case at::kChar: return io::DType::I8;
    case at::kShort: return io::DType::I16;
    case at::kHalf: return io::DType::F16;
    case at::kBFloat16: return io::DType::BF16;
    case at::kInt: return io::DType::I32;
    case at::kFloat: return io::DType::F32;
    case at::kDouble: return io::DType::F64;
    case at::kLong: return io::DType::I64;
    default: break;
  }
  throw Error(std::string("cannot store tensors of type ") + c10::toString(type) + " in safetensors");
}

at::Tensor load_tensor(const io::TensorInfo& info, at::ScalarType type, const at::Device& device,
                       const std::string& file) {
  const at::ScalarType stored = to_scalar_type(info.dtype, file + ": tensor '" + info.name + "'");
  // The mapping is read-only and may be unaligned for the element type: copy the bytes out first.
  at::Tensor staging = at::empty(info.shape, at::TensorOptions().dtype(stored));
  if (info.nbytes() > 0) std::memcpy(staging.data_ptr(), info.data, info.nbytes());
  return staging.to(device, type);
}

void copy_tensor(at::Tensor& destination, const io::TensorInfo& info, const std::string& file) {
  const at::ScalarType stored = to_scalar_type(info.dtype, file + ": tensor '" + info.name + "'");
  const auto address = reinterpret_cast<std::uintptr_t>(info.data);
  if (address % c10::elementSize(stored) == 0) {
    // Aligned: read straight from the mapping (copy_ only reads the source).
    destination.copy_(at::from_blob(const_cast<std::uint8_t*>(info.data), info.shape, at::TensorOptions().dtype(stored)));
  } else {
    destination.copy_(load_tensor(info, stored, at::kCPU, file));
  }
}

void load_parameters(torch::nn::Module& module, const io::CheckpointDir& ckpt, const LoadOptions& options) {
  torch::NoGradGuard no_grad;
  std::set<std::string> used;
  for (auto& item : module.named_parameters(/*recurse=*/true)) {
    const std::string name = options.prefix + item.key();
    at::Tensor& param = item.value();
    if (!ckpt.contains(name))
      fail_file(ckpt.dir().string(), "missing tensor '" + name + "' (shape " +
                                         io::shape_string(to_vector(param.sizes())) + ")");
    const io::TensorInfo& info = ckpt.tensor(name);
    const std::string file = ckpt.file_of(name).string();
    if (info.shape != to_vector(param.sizes()))
      fail_file(file, "tensor '" + name + "' has shape " + io::shape_string(info.shape) +
                          " but the model expects " + io::shape_string(to_vector(param.sizes())));
    copy_tensor(param, info, file);
    ckpt.evict(name);
    used.insert(name);
  }
  for (const std::string& name : ckpt.tensor_names()) {
    if (used.count(name) || !starts_with(name, options.prefix)) continue;
    bool ignored = ends_with(name, "rotary_emb.inv_freq");  // old checkpoints stored this buffer
    for (const auto& p : options.ignore_prefixes) ignored = ignored || starts_with(name, p);
    if (!ignored)
      fail_file(ckpt.file_of(name).string(), "unexpected tensor '" + name + "' (shape " +
                                                 io::shape_string(ckpt.tensor(name).shape) + ") that the model does not have");
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

void write_tensors(const fs::path& file, const std::vector<std::pair<std::string, at::Tensor>>& tensors,
                   const std::map<std::string, std::string>& metadata) {
  std::vector<at::Tensor> keep;  // contiguous CPU copies stay alive while writing
  keep.reserve(tensors.size());
  std::vector<io::TensorBytes> entries;
  for (const auto& [name, tensor] : tensors) {
    keep.push_back(tensor.detach().to(at::kCPU).contiguous());
    const at::Tensor& t = keep.back();
    entries.push_back({name, to_dtype(t.scalar_type()), to_vector(t.sizes()), t.data_ptr(),
                       static_cast<size_t>(t.numel() * t.element_size())});
  }
  io::write_safetensors(file, entries, metadata);
}

void write_safetensors_shards(const std::vector<std::pair<std::string, at::Tensor>>& tensors,
                              const fs::path& dir, std::uint64_t max_shard_bytes) {
  // Greedy in order, as HF's split_torch_state_dict_into_shards: a tensor larger than the limit
  // gets a shard of its own.
  std::vector<std::vector<size_t>> shards(1);
  std::uint64_t shard_bytes = 0, total = 0;
  for (size_t i = 0; i < tensors.size(); ++i) {
    const std::uint64_t n = tensors[i].second.numel() * tensors[i].second.element_size();
    if (!shards.back().empty() && shard_bytes + n > max_shard_bytes) shards.emplace_back(), shard_bytes = 0;
    shards.back().push_back(i);
    shard_bytes += n;
    total += n;
  }
  nlohmann::json weight_map = nlohmann::json::object();
  const std::map<std::string, std::string> metadata{{"format", "pt"}};
  for (size_t s = 0; s < shards.size(); ++s) {
    char name[64];
    std::snprintf(name, sizeof name, "model-%05zu-of-%05zu.safetensors", s + 1, shards.size());
    const std::string file = shards.size() == 1 ? io::CheckpointDir::kSingleFile : name;
    std::vector<std::pair<std::string, at::Tensor>> shard;
    for (size_t i : shards[s]) {
      shard.push_back(tensors[i]);
      weight_map[tensors[i].first] = file;
    }
    write_tensors(dir / file, shard, metadata);
  }
  if (shards.size() > 1) {
    nlohmann::json index = {{"metadata", {{"total_size", total}}}, {"weight_map", weight_map}};
    write_file_atomically(dir / io::CheckpointDir::kIndexFile, index.dump(2) + "\n");
  }
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
  write_safetensors_shards(tensors, out.staging(), options.max_shard_bytes);
  write_file_atomically(out.staging() / io::CheckpointDir::kConfigFile, config.to_json().dump(2) + "\n");
  out.commit();
}

}  // namespace c3
