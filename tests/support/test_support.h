// Helpers shared by the c3 tests: temporary folders, tiny checkpoints, device x dtype parameters,
// and reference fixtures (a checkpoint plus inputs and expected outputs) that parity tests load.
#pragma once

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <filesystem>
#include <string>
#include <vector>

#include "c3/model/qwen2.h"

namespace c3::test {

// A fresh folder under the system temp dir, removed with everything in it on destruction.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  const std::filesystem::path& path() const { return path_; }
  std::filesystem::path operator/(const std::string& name) const { return path_ / name; }

 private:
  std::filesystem::path path_;
};

void write_bytes(const std::filesystem::path& path, const std::string& bytes);
std::string read_bytes(const std::filesystem::path& path);

// A small Qwen2 with GQA (4 heads over 2 kv heads), so head mapping and RoPE pairing are exercised.
Qwen2Config tiny_config(bool tied = true);

struct DeviceDtype {
  torch::Device device;
  torch::Dtype dtype;
};
// cpu x {float32, bfloat16}, plus cuda x {float32, bfloat16} when a GPU is present.
std::vector<DeviceDtype> device_dtype_params();
std::string param_name(const testing::TestParamInfo<DeviceDtype>& info);

// Reference fixture: `dir/model/` (HF checkpoint) and `dir/reference.safetensors` holding
// input_ids [B, T] (I64), attention_mask [B, T] (I64) and logits [B, T, V] (F32). The GPU issue
// drops fixtures made by Hugging Face transformers into this format.
struct ParityResult {
  double max_abs_diff = 0;  // over positions where attention_mask is 1
  double max_abs_ref = 0;
};
void write_reference_fixture(const std::filesystem::path& dir, Qwen2ForCausalLM& model,
                             const torch::Tensor& input_ids, const torch::Tensor& attention_mask,
                             const torch::Tensor& logits);
ParityResult compare_with_reference_fixture(const std::filesystem::path& dir, torch::Dtype dtype,
                                            torch::Device device);

}  // namespace c3::test
