#include "test_support.h"

#include <fstream>
#include <random>
#include <sstream>

#include "c3/io/checkpoint_dir.h"
#include "c3/io/safetensors.h"
#include "c3/model/qwen2_io.h"

namespace fs = std::filesystem;

namespace c3::test {

TempDir::TempDir() {
  std::random_device rd;
  path_ = fs::temp_directory_path() / ("c3-test-" + std::to_string(rd()) + std::to_string(rd()));
  fs::create_directories(path_);
}

TempDir::~TempDir() {
  std::error_code ec;
  fs::remove_all(path_, ec);
}

void write_bytes(const fs::path& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

std::string read_bytes(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

Qwen2Config tiny_config(bool tied) {
  Qwen2Config c = Qwen2Config::preset("tiny");
  c.vocab_size = 97;
  c.num_hidden_layers = 2;
  c.tie_word_embeddings = tied;
  return c;
}

std::vector<DeviceDtype> device_dtype_params() {
  std::vector<DeviceDtype> out{{torch::kCPU, torch::kFloat32}, {torch::kCPU, torch::kBFloat16}};
  if (torch::cuda::is_available()) {
    out.push_back({torch::Device(torch::kCUDA, 0), torch::kFloat32});
    out.push_back({torch::Device(torch::kCUDA, 0), torch::kBFloat16});
  }
  return out;
}

std::string param_name(const testing::TestParamInfo<DeviceDtype>& info) {
  return std::string(info.param.device.is_cuda() ? "cuda" : "cpu") + "_" + scalar_type_name(info.param.dtype);
}

void write_reference_fixture(const fs::path& dir, Qwen2ForCausalLM& model, const torch::Tensor& input_ids,
                             const torch::Tensor& attention_mask, const torch::Tensor& logits) {
  fs::create_directories(dir);
  save_qwen2(model, dir / "model");
  write_tensors(dir / "reference.safetensors", {{"input_ids", input_ids.to(torch::kLong)},
                                                {"attention_mask", attention_mask.to(torch::kLong)},
                                                {"logits", logits.to(torch::kFloat)}});
}

ParityResult compare_with_reference_fixture(const fs::path& dir, torch::Dtype dtype, torch::Device device) {
  LoadOptions opts;
  opts.dtype = dtype;
  opts.device = device;
  Qwen2ForCausalLM model = load_qwen2(dir / "model", opts);
  io::SafetensorsReader ref(dir / "reference.safetensors");
  const std::string file = ref.path().string();
  auto load = [&](const char* name, torch::Dtype type) { return load_tensor(ref.at(name), type, device, file); };
  const torch::Tensor ids = load("input_ids", torch::kLong);
  const torch::Tensor mask = load("attention_mask", torch::kLong);
  const torch::Tensor expected = load("logits", torch::kFloat);
  torch::NoGradGuard no_grad;
  const torch::Tensor got = model->forward(ids, mask).to(torch::kFloat);
  const torch::Tensor valid = mask.to(torch::kBool).unsqueeze(-1).expand_as(got);
  ParityResult r;
  r.max_abs_diff = (got - expected).abs().masked_select(valid).max().item<double>();
  r.max_abs_ref = expected.abs().masked_select(valid).max().item<double>();
  return r;
}

}  // namespace c3::test
