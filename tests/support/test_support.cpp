#include "test_support.h"

#include <fstream>
#include <random>
#include <sstream>

#include "c3/model/qwen2_io.h"
#include "c3/tokenizer/sentencepiece.h"
#include "c3/util/dtype.h"

#include <nlohmann/json.hpp>

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
  return {{torch::kCPU, torch::kFloat32},
          {torch::kCPU, torch::kBFloat16},
          {torch::Device(torch::kCUDA, 0), torch::kFloat32},
          {torch::Device(torch::kCUDA, 0), torch::kBFloat16}};
}

void DeviceDtypeTest::SetUp() {
  if (GetParam().device.is_cuda() && !torch::cuda::is_available())
    GTEST_SKIP() << "no CUDA device visible: the cuda cases need a GPU";
}

std::string param_name(const testing::TestParamInfo<DeviceDtype>& info) {
  return std::string(info.param.device.is_cuda() ? "cuda" : "cpu") + "_" + scalar_type_name(info.param.dtype);
}

std::vector<int32_t> ByteTokenizer::encode(std::string_view text) const {
  const auto& specials = c3_special_tokens();
  std::vector<int32_t> ids;
  for (size_t i = 0; i < text.size();) {
    bool matched = false;
    for (size_t s = 0; s < specials.size() && !matched; ++s) {
      if (text.compare(i, specials[s].size(), specials[s]) == 0) {
        ids.push_back(static_cast<int32_t>(s)), i += specials[s].size(), matched = true;
      }
    }
    if (!matched) ids.push_back(6 + static_cast<unsigned char>(text[i++]));
  }
  return ids;
}

std::vector<int32_t> ByteTokenizer::encode_text(std::string_view text) const {
  std::vector<int32_t> ids;
  for (char c : text) ids.push_back(6 + static_cast<unsigned char>(c));
  return ids;
}

std::string ByteTokenizer::decode(const std::vector<int32_t>& ids, bool skip_special) const {
  std::string out;
  for (int32_t id : ids) {
    if (id < 6) {
      if (!skip_special) out += c3_special_tokens()[id];
    } else {
      out += static_cast<char>(id - 6);
    }
  }
  return out;
}

std::optional<int32_t> ByteTokenizer::token_id(std::string_view token) const {
  const auto& specials = c3_special_tokens();
  for (size_t s = 0; s < specials.size(); ++s)
    if (specials[s] == token) return static_cast<int32_t>(s);
  if (token.size() == 1) return 6 + static_cast<unsigned char>(token[0]);
  return std::nullopt;
}

C3Config tiny_c3_config(int64_t latent_tokens) {
  C3Config c;
  c.encoder = tiny_config();
  c.encoder.vocab_size = 262;
  c.decoder = tiny_config();
  c.decoder.vocab_size = 262;
  c.decoder.hidden_size = 96;  // different widths, so the projector really maps between them
  c.decoder.intermediate_size = 192;
  c.decoder.num_attention_heads = 6;
  c.decoder.head_dim = 16;
  c.latent_tokens = latent_tokens;
  return c;
}

std::vector<std::string> random_texts(int count, int words, uint64_t seed) {
  std::mt19937_64 rng(seed);
  const std::string letters = "abcdefghijklmnopqrstuvwxyz";
  std::vector<std::string> pool;
  std::mt19937_64 pool_rng(12345);
  for (int i = 0; i < 300; ++i) {
    std::string w;
    const int n = 3 + static_cast<int>(pool_rng() % 4);
    for (int k = 0; k < n; ++k) w += letters[pool_rng() % letters.size()];
    pool.push_back(w);
  }
  std::vector<std::string> texts;
  for (int i = 0; i < count; ++i) {
    std::string t;
    for (int k = 0; k < words; ++k) t += (k ? " " : "") + pool[rng() % pool.size()];
    texts.push_back(t);
  }
  return texts;
}

void write_jsonl(const fs::path& file, const std::vector<std::string>& texts) {
  std::string out;
  for (const auto& t : texts) out += nlohmann::json{{"text", t}}.dump() + "\n";
  write_bytes(file, out);
}

void train_test_tokenizer(const std::vector<std::string>& texts, const fs::path& dir, int vocab_size) {
  const fs::path corpus = dir.parent_path() / (dir.filename().string() + "-corpus.txt");
  std::string text;
  for (int repeat = 0; repeat < 4; ++repeat)
    for (const auto& t : texts) text += t + "\n";
  write_bytes(corpus, text);
  SentencePieceTrainOptions o;
  o.inputs = {corpus};
  o.vocab_size = vocab_size;
  o.model_type = "bpe";
  train_sentencepiece(o, dir);
}

}  // namespace c3::test
