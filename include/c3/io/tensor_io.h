// Between LibTorch tensors and safetensors files: what checkpoints, optimizer states and latent
// files share (c3/io/safetensors.h knows bytes only).
#pragma once

#include <ATen/ATen.h>

#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "c3/io/safetensors.h"

namespace c3::io {

// The LibTorch type of a stored dtype; `context` names the file and tensor in the error.
at::ScalarType to_scalar_type(DType dtype, const std::string& context);
DType to_dtype(at::ScalarType type);

// Copies a stored tensor into a new tensor of `type` on `device`.
at::Tensor load_tensor(const TensorInfo& info, at::ScalarType type, const at::Device& device, const std::string& file);

// Copies a stored tensor into `destination` (same shape; any dtype or device), converting on the way.
void copy_tensor(at::Tensor& destination, const TensorInfo& info, const std::string& file);

// Writes named tensors (on any device) into one safetensors file, atomically.
void write_tensors(const std::filesystem::path& file, const std::vector<std::pair<std::string, at::Tensor>>& tensors,
                   const std::map<std::string, std::string>& metadata = {});

// Writes the named tensors into `dir` (already existing) as HF does: model.safetensors, or
// model-0000i-of-0000n.safetensors shards of at most `max_shard_bytes` and their index.
void write_safetensors_shards(const std::vector<std::pair<std::string, at::Tensor>>& tensors,
                              const std::filesystem::path& dir, std::uint64_t max_shard_bytes);

}  // namespace c3::io
