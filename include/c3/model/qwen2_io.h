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
#include "c3/io/tensor_io.h"
#include "c3/model/qwen2.h"

namespace c3 {

struct LoadOptions {
  std::optional<at::ScalarType> dtype;  // default: the checkpoint's own (config dtype)
  at::Device device = at::kCPU;
  // Tensors under these prefixes may be present without being loaded (e.g. C3's "model.Q." in a
  // decoder checkpoint). Anything else the model lacks is an error.
  std::vector<std::string> ignore_prefixes;
  // Prefix in front of the checkpoint's names for this model ("" for a plain Qwen2 folder).
  std::string prefix;
};

// Fills every parameter of `module` from `ckpt`: a missing tensor, an unexpected one or a shape
// mismatch throws c3::Error naming the tensor, the file and both shapes.
void load_parameters(torch::nn::Module& module, const io::CheckpointDir& ckpt, const LoadOptions& options);

Qwen2ForCausalLM load_qwen2(const std::filesystem::path& dir, const LoadOptions& options = {});

struct SaveOptions {
  std::optional<at::ScalarType> dtype;         // default: keep each parameter's dtype
  std::uint64_t max_shard_bytes = 5ull << 30;  // HF's save_pretrained default (5 GB)
  bool overwrite = false;
  std::map<std::string, std::string> extra_files;  // name -> contents, written into the folder too (tokenizer files)
};

// Writes config.json and model.safetensors (or model-0000i-of-0000n.safetensors shards and
// model.safetensors.index.json). The folder appears complete or not at all.
void save_qwen2(Qwen2ForCausalLM& model, const std::filesystem::path& dir, const SaveOptions& options = {});

}  // namespace c3
