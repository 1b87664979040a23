#include "c3/io/tensor_io.h"

#include <nlohmann/json.hpp>

#include <cstdio>
#include <cstring>

#include "c3/io/checkpoint_dir.h"
#include "c3/util/atomic_file.h"
#include "c3/util/error.h"

namespace fs = std::filesystem;

namespace c3::io {
namespace {

std::vector<int64_t> to_vector(at::IntArrayRef sizes) { return {sizes.begin(), sizes.end()}; }

}  // namespace

at::ScalarType to_scalar_type(io::DType dtype, const std::string& context) {
  switch (dtype) {
    case DType::BOOL:
      return at::kBool;
    case DType::U8:
      return at::kByte;
    case DType::I8:
      return at::kChar;
    case DType::I16:
      return at::kShort;
    case DType::F16:
      return at::kHalf;
    case DType::BF16:
      return at::kBFloat16;
    case DType::I32:
      return at::kInt;
    case DType::F32:
      return at::kFloat;
    case DType::F64:
      return at::kDouble;
    case DType::I64:
      return at::kLong;
    default:
      break;
  }
  fail_file(context, "dtype " + std::string(dtype_name(dtype)) + " has no LibTorch equivalent");
}

io::DType to_dtype(at::ScalarType type) {
  switch (type) {
    case at::kBool:
      return DType::BOOL;
    case at::kByte:
      return DType::U8;
    case at::kChar:
      return DType::I8;
    case at::kShort:
      return DType::I16;
    case at::kHalf:
      return DType::F16;
    case at::kBFloat16:
      return DType::BF16;
    case at::kInt:
      return DType::I32;
    case at::kFloat:
      return DType::F32;
    case at::kDouble:
      return DType::F64;
    case at::kLong:
      return DType::I64;
    default:
      break;
  }
  throw Error(std::string("cannot store tensors of type ") + c10::toString(type) + " in safetensors");
}

at::Tensor load_tensor(const TensorInfo& info, at::ScalarType type, const at::Device& device, const std::string& file) {
  const at::ScalarType stored = to_scalar_type(info.dtype, file + ": tensor '" + info.name + "'");
  // The mapping is read-only and may be unaligned for the element type: copy the bytes out first.
  at::Tensor staging = at::empty(info.shape, at::TensorOptions().dtype(stored));
  if (info.nbytes() > 0) std::memcpy(staging.data_ptr(), info.data, info.nbytes());
  return staging.to(device, type);
}

void copy_tensor(at::Tensor& destination, const TensorInfo& info, const std::string& file) {
  const at::ScalarType stored = to_scalar_type(info.dtype, file + ": tensor '" + info.name + "'");
  const auto address = reinterpret_cast<std::uintptr_t>(info.data);
  if (address % c10::elementSize(stored) == 0) {
    // Aligned: read straight from the mapping (copy_ only reads the source).
    destination.copy_(
        at::from_blob(const_cast<std::uint8_t*>(info.data), info.shape, at::TensorOptions().dtype(stored)));
  } else {
    destination.copy_(load_tensor(info, stored, at::kCPU, file));
  }
}

void write_tensors(const fs::path& file, const std::vector<std::pair<std::string, at::Tensor>>& tensors,
                   const std::map<std::string, std::string>& metadata) {
  std::vector<at::Tensor> keep;  // contiguous CPU copies stay alive while writing
  keep.reserve(tensors.size());
  std::vector<TensorBytes> entries;
  for (const auto& [name, tensor] : tensors) {
    keep.push_back(tensor.detach().to(at::kCPU).contiguous());
    const at::Tensor& t = keep.back();
    entries.push_back({name, to_dtype(t.scalar_type()), to_vector(t.sizes()), t.data_ptr(),
                       static_cast<size_t>(t.numel() * t.element_size())});
  }
  write_safetensors(file, entries, metadata);
}

void write_safetensors_shards(const std::vector<std::pair<std::string, at::Tensor>>& tensors, const fs::path& dir,
                              std::uint64_t max_shard_bytes) {
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
    const std::string file = shards.size() == 1 ? CheckpointDir::kSingleFile : name;
    std::vector<std::pair<std::string, at::Tensor>> shard;
    for (size_t i : shards[s]) {
      shard.push_back(tensors[i]);
      weight_map[tensors[i].first] = file;
    }
    write_tensors(dir / file, shard, metadata);
  }
  if (shards.size() > 1) {
    nlohmann::json index = {{"metadata", {{"total_size", total}}}, {"weight_map", weight_map}};
    write_file_atomically(dir / CheckpointDir::kIndexFile, index.dump(2) + "\n");
  }
}

}  // namespace c3::io
