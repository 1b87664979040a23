// Loading and saving Qwen2 models as Hugging Face checkpoint folders.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "c3/io/checkpoint_dir.h"
#include "c3/io/safetensors.h"
#include "c3/model/qwen2.h"

namespace c3 {

at::ScalarType to_scalar_type(io::DType dtype, const std::string& context);
io::DType to_dtype(at::ScalarType type);

// Copies a stored tensor into a new tensor of `type` on `device`.
at::Tensor load_tensor(const io::TensorInfo& info, at::ScalarType type, const at::Device& device,
                       const std::string& file);

struct LoadOptions {
  std::optional<at::ScalarType> dtype;  // default: the checkpoint's own (config dtype)
  at::Device device = at::kCPU;
  // Tensors under these prefixes may be present without being loaded (e.g. C3's "model.Q." in a
  // decoder checkpoint). Anything else the model lacks is an error.
  std::vector<std::string> ignore_prefixes;
  // Prefix in front of the checkpoint's names for this model ("" for a plain Qwen2 folder).
  std::string prefix;
};

// Copies a stored tensor into `destination` (same shape; any dtype or device), converting on the way.
void copy_tensor(at::Tensor& destination, const io::TensorInfo& info, const std::string& file);

// Fills every parameter of `module` from `ckpt`: a missing tensor, an unexpected one or a shape
// mismatch throws c3::Error naming the tensor, the file and both shapes.
void load_parameters(torch::nn::Module& module, const io::CheckpointDir& ckpt, const LoadOptions& options);

Qwen2ForCausalLM load_qwen2(const std::filesystem::path& dir, const LoadOptions& options = {});

struct SaveOptions {
  std::optional<at::ScalarType> dtype;          // default: keep each parameter's dtype
  std::uint64_t max_shard_bytes = 5ull << 30;   // HF's save_pretrained default (5 GB)
  bool overwrite = false;
};

// Writes config.json and model.safetensors (or model-0000i-of-0000n.safetensors shards and
// model.safetensors.index.json). The folder appears complete or not at all.
void save_qwen2(Qwen2ForCausalLM& model, const std::filesystem::path& dir, const SaveOptions& options = {});

// Writes named tensors (on any device) into one safetensors file, atomically.
void write_tensors(const std::filesystem::path& file, const std::vector<std::pair<std::string, at::Tensor>>& tensors,
                   const std::map<std::string, std::string>& metadata = {});

// Writes the named tensors into `dir` (already existing), sharded as HF does.
void write_safetensors_shards(const std::vector<std::pair<std::string, at::Tensor>>& tensors,
                              const std::filesystem::path& dir, std::uint64_t max_shard_bytes);

}  // namespace c3
