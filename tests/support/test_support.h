// Helpers shared by the c3 tests: temporary folders, tiny checkpoints, device x dtype parameters.
// (Parity with Hugging Face transformers is checked by the Python tests in tests/hf/.)
#pragma once

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "c3/model/c3_model.h"
#include "c3/model/qwen2.h"
#include "c3/tokenizer/tokenizer.h"

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

// The message of the E that `f` throws, or "(no error)" when it throws none.
template <typename E>
std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const E& e) {
    return e.what();
  }
  return "(no error)";
}
std::string read_bytes(const std::filesystem::path& path);

// A small Qwen2 with GQA (4 heads over 2 kv heads), so head mapping and RoPE pairing are exercised.
Qwen2Config tiny_config(bool tied = true);

struct DeviceDtype {
  torch::Device device;
  torch::Dtype dtype;
};
// {cpu, cuda} x {float32, bfloat16}. Tests parameterised over them derive from DeviceDtypeTest,
// which skips the CUDA cases, visibly (CTest reports them as skipped), on a machine without a GPU.
std::vector<DeviceDtype> device_dtype_params();
std::string param_name(const testing::TestParamInfo<DeviceDtype>& info);

class DeviceDtypeTest : public testing::TestWithParam<DeviceDtype> {
 protected:
  void SetUp() override;
};

// A tokenizer for model tests that needs no files: the C3 special tokens are ids 0..5, then one
// id per byte (6 + byte). vocab_size() == 262.
class ByteTokenizer : public Tokenizer {
 public:
  std::vector<int32_t> encode(std::string_view text) const override;
  std::vector<int32_t> encode_text(std::string_view text) const override;  // every byte its own id
  std::string decode(const std::vector<int32_t>& ids, bool skip_special = false) const override;
  std::optional<int32_t> token_id(std::string_view token) const override;
  int64_t vocab_size() const override { return 262; }
  std::string kind() const override { return "test-bytes"; }
  std::string source() const override { return "<test byte tokenizer>"; }
};

// Two tiny Qwen2s (encoder 2 layers, decoder 2 layers, vocab 262) with `latent_tokens` slots.
C3Config tiny_c3_config(int64_t latent_tokens = 4);

// Texts of `words` pseudo-words each, drawn from a fixed pool (seeded): data a model can only
// reconstruct by reading it, since the words carry no pattern.
std::vector<std::string> random_texts(int count, int words, uint64_t seed);

// Writes `texts` as JSONL ({"text": ...} per line).
void write_jsonl(const std::filesystem::path& file, const std::vector<std::string>& texts);

// Trains a small sentencepiece tokenizer (with the C3 special tokens) on `texts` into `dir`.
void train_test_tokenizer(const std::vector<std::string>& texts, const std::filesystem::path& dir,
                          int vocab_size = 300);

}  // namespace c3::test
