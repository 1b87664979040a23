// Hugging Face checkpoint folders: config spellings, shards, tied weights, and the errors.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "c3/io/checkpoint_dir.h"
#include "c3/io/tensor_io.h"
#include "c3/model/checkpoint_info.h"
#include "c3/model/qwen2_io.h"
#include "c3/util/atomic_file.h"
#include "c3/util/error.h"
#include "test_support.h"

namespace c3 {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using testing::HasSubstr;

json v4_config() {
  return json::parse(R"({
    "architectures": ["Qwen2ForCausalLM"], "model_type": "qwen2", "vocab_size": 97, "hidden_size": 64,
    "intermediate_size": 176, "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2,
    "max_position_embeddings": 2048, "rope_theta": 10000.0, "rms_norm_eps": 1e-05, "tie_word_embeddings": true,
    "torch_dtype": "bfloat16", "use_sliding_window": false, "sliding_window": 2048, "max_window_layers": 2,
    "bos_token_id": 1, "eos_token_id": 2, "rope_scaling": null, "hidden_act": "silu"})");
}

json v5_config() {
  json j = v4_config();
  j.erase("torch_dtype");
  j.erase("rope_theta");
  j["dtype"] = "bfloat16";
  j["rope_parameters"] = {{"rope_type", "default"}, {"rope_theta", 10000.0}};
  j["layer_types"] = {"full_attention", "full_attention"};
  return j;
}

void expect_error(const std::function<void()>& f, const std::vector<std::string>& parts) {
  try {
    f();
    ADD_FAILURE() << "no error; expected one containing " << parts.front();
  } catch (const Error& e) {
    for (const auto& p : parts) EXPECT_THAT(e.what(), HasSubstr(p));
  }
}

// Writes a tiny random model as a checkpoint folder with the given config.json.
fs::path write_checkpoint(const fs::path& dir, const json& config, uint64_t shard_bytes = 1ull << 30) {
  Qwen2ForCausalLM m(Qwen2Config::from_json(config, "test"));
  m->init_weights(1);
  SaveOptions save;
  save.max_shard_bytes = shard_bytes;
  save_qwen2(m, dir, save);
  write_file_atomically(dir / "config.json", config.dump(2));
  return dir;
}

TEST(Qwen2Config, BothSpellingsReadTheSame) {
  auto a = Qwen2Config::from_json(v4_config(), "v4.json");
  auto b = Qwen2Config::from_json(v5_config(), "v5.json");
  EXPECT_EQ(a.rope_theta, 10000.0);
  EXPECT_EQ(b.rope_theta, 10000.0);
  EXPECT_EQ(a.dtype, "bfloat16");
  EXPECT_EQ(b.dtype, "bfloat16");
  EXPECT_EQ(a.head_dim, 16);
  EXPECT_EQ(a.to_json(), b.to_json());
  EXPECT_EQ(a.extra["bos_token_id"], 1);  // unmodelled keys survive a round trip
  auto again = Qwen2Config::from_json(a.to_json(), "again");
  EXPECT_EQ(again.to_json(), a.to_json());
}

TEST(Qwen2Config, ErrorsNameTheFileAndKey) {
  auto bad = v4_config();
  bad["hidden_size"] = "64";
  expect_error([&] { Qwen2Config::from_json(bad, "cfg.json"); }, {"cfg.json", "hidden_size", "integer"});
  bad = v4_config();
  bad.erase("num_hidden_layers");
  expect_error([&] { Qwen2Config::from_json(bad, "cfg.json"); }, {"cfg.json", "num_hidden_layers"});
  bad = v4_config();
  bad["num_key_value_heads"] = 3;
  expect_error([&] { Qwen2Config::from_json(bad, "cfg.json"); }, {"multiple of num_key_value_heads"});
  bad = v5_config();
  bad["layer_types"][1] = "sliding_attention";
  expect_error([&] { Qwen2Config::from_json(bad, "cfg.json"); }, {"sliding_attention", "not supported"});
  bad = v5_config();
  bad["rope_parameters"]["rope_type"] = "yarn";
  expect_error([&] { Qwen2Config::from_json(bad, "cfg.json"); }, {"yarn"});
  bad = v4_config();
  bad["use_sliding_window"] = true;
  expect_error([&] { Qwen2Config::from_json(bad, "cfg.json"); }, {"sliding-window"});
}

TEST(CheckpointLoading, BothConfigSpellingsLoadTheSameModel) {
  test::TempDir dir;
  write_checkpoint(dir / "v4", v4_config());
  fs::copy(dir / "v4", dir / "v5");
  write_file_atomically(dir / "v5" / "config.json", v5_config().dump());
  auto a = load_qwen2(dir / "v4"), b = load_qwen2(dir / "v5");
  EXPECT_EQ(a->parameters().front().scalar_type(), torch::kBFloat16);
  torch::NoGradGuard g;
  auto x = torch::arange(10).unsqueeze(0);
  EXPECT_TRUE(torch::equal(a->forward(x), b->forward(x)));
}

TEST(CheckpointLoading, ShardedAndSingleFileGiveTheSameWeights) {
  test::TempDir dir;
  auto cfg = v4_config();
  cfg["torch_dtype"] = "float32";
  write_checkpoint(dir / "one", cfg);
  write_checkpoint(dir / "many", cfg, 30000);
  io::CheckpointDir many(dir / "many");
  EXPECT_GT(many.files().size(), 2u);
  LoadOptions opts;
  opts.dtype = torch::kFloat64;  // loads into a requested dtype
  auto a = load_qwen2(dir / "one", opts), b = load_qwen2(dir / "many", opts);
  EXPECT_EQ(a->parameters().front().scalar_type(), torch::kFloat64);
  auto pa = a->named_parameters(), pb = b->named_parameters();
  for (const auto& p : pa) EXPECT_TRUE(torch::equal(p.value(), pb[p.key()])) << p.key();
}

TEST(CheckpointLoading, TiedCheckpointWithAStoredLmHeadStillLoads) {
  test::TempDir dir;
  auto cfg = v4_config();
  cfg["tie_word_embeddings"] = false;
  write_checkpoint(dir / "c", cfg);  // stores lm_head.weight
  cfg["tie_word_embeddings"] = true;
  write_file_atomically(dir / "c" / "config.json", cfg.dump());
  auto m = load_qwen2(dir / "c");
  EXPECT_FALSE(m->lm_head);
  EXPECT_EQ(describe_checkpoint(dir / "c")["parameters"], Qwen2Config::from_json(cfg, "").parameter_count());
}

// Rewrites model.safetensors of `dir` through `edit` (name -> tensor map).
void rewrite_weights(const fs::path& dir, const std::function<void(std::map<std::string, torch::Tensor>&)>& edit) {
  std::map<std::string, torch::Tensor> tensors;
  {
    io::SafetensorsReader r(dir / "model.safetensors");
    for (const auto& t : r.tensors()) tensors[t.name] = io::load_tensor(t, torch::kFloat32, torch::kCPU, "");
  }
  edit(tensors);
  std::vector<std::pair<std::string, torch::Tensor>> list(tensors.begin(), tensors.end());
  io::write_safetensors_shards(list, dir, 1ull << 30);
}

TEST(CheckpointLoading, MissingUnexpectedAndMisshapedTensorsAreNamed) {
  test::TempDir dir;
  auto cfg = v4_config();
  cfg["torch_dtype"] = "float32";
  const auto file = (dir / "c" / "model.safetensors").string();
  write_checkpoint(dir / "c", cfg);
  rewrite_weights(dir / "c", [](auto& t) { t.erase("model.layers.1.mlp.up_proj.weight"); });
  expect_error([&] { load_qwen2(dir / "c"); },
               {"missing tensor 'model.layers.1.mlp.up_proj.weight'", "[176, 64]", (dir / "c").string()});
  write_checkpoint(dir / "d", cfg);
  rewrite_weights(dir / "d", [](auto& t) { t["model.layers.0.self_attn.extra"] = torch::zeros({2}); });
  expect_error([&] { load_qwen2(dir / "d"); },
               {"unexpected tensor 'model.layers.0.self_attn.extra'", (dir / "d" / "model.safetensors").string()});
  write_checkpoint(dir / "e", cfg);
  rewrite_weights(dir / "e", [](auto& t) { t["model.norm.weight"] = torch::ones({65}); });
  expect_error([&] { load_qwen2(dir / "e"); },
               {"model.norm.weight", "[65]", "[64]", (dir / "e" / "model.safetensors").string()});
  LoadOptions ignore;
  write_checkpoint(dir / "f", cfg);
  rewrite_weights(dir / "f", [](auto& t) { t["model.Q.weight"] = torch::ones({4, 64}); });
  ignore.ignore_prefixes = {"model.Q."};
  EXPECT_NO_THROW(load_qwen2(dir / "f", ignore));
}

TEST(CheckpointLoading, UnalignedTensorsCopyCorrectly) {
  // A U8 byte first puts the F32 tensor at an odd address in the mapping.
  test::TempDir dir;
  std::string header =
      R"({"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},"b":{"dtype":"F32","shape":[2],"data_offsets":[1,9]}})";
  header.append((8 - header.size() % 8) % 8, ' ');
  std::string bytes(8, '\0');
  for (int i = 0; i < 8; ++i) bytes[i] = static_cast<char>((header.size() >> (8 * i)) & 0xff);
  const float values[2] = {1.25f, -3.5f};
  bytes += header + std::string(1, '\x07') + std::string(reinterpret_cast<const char*>(values), 8);
  test::write_bytes(dir / "u.safetensors", bytes);
  io::SafetensorsReader r(dir / "u.safetensors");
  ASSERT_NE(reinterpret_cast<std::uintptr_t>(r.at("b").data) % 4, 0u);
  auto dst = torch::zeros({2}, torch::kFloat64);
  io::copy_tensor(dst, r.at("b"), "u.safetensors");
  EXPECT_EQ(dst[0].item<double>(), 1.25);
  EXPECT_EQ(dst[1].item<double>(), -3.5);
}

TEST(CheckpointLoading, BrokenFoldersGiveOneLineErrors) {
  test::TempDir dir;
  expect_error([&] { io::CheckpointDir c(dir / "nope"); }, {"nope", "no such folder"});
  fs::create_directories(dir / "empty");
  expect_error([&] { io::CheckpointDir c(dir / "empty"); }, {"config.json", "missing"});
  test::write_bytes(dir / "empty" / "config.json", "{\"a\": ");
  expect_error([&] { io::CheckpointDir c(dir / "empty"); }, {"config.json", "invalid JSON"});
  test::write_bytes(dir / "empty" / "config.json", v4_config().dump());
  expect_error([&] { io::CheckpointDir c(dir / "empty"); }, {"no weights"});

  write_checkpoint(dir / "s", v4_config(), 30000);
  auto index = io::read_json_file(dir / "s" / "model.safetensors.index.json");
  const std::string second = index["weight_map"]["model.layers.0.mlp.up_proj.weight"];
  fs::remove(dir / "s" / second);
  expect_error([&] { io::CheckpointDir c(dir / "s"); }, {second, "missing"});
  write_checkpoint(dir / "t", v4_config(), 30000);
  index = io::read_json_file(dir / "t" / "model.safetensors.index.json");
  const std::string first = index["weight_map"]["model.norm.weight"];
  index["weight_map"]["model.ghost"] = first;
  write_file_atomically(dir / "t" / "model.safetensors.index.json", index.dump());
  expect_error([&] { io::CheckpointDir c(dir / "t"); }, {first, "model.ghost"});
}

TEST(CheckpointInfo, DescribesAC3FolderWithItsEncoder) {
  test::TempDir dir;
  auto dec = v4_config();
  dec["torch_dtype"] = "float32";
  write_checkpoint(dir / "c3", dec);
  write_checkpoint(dir / "c3" / "llm1", dec);
  rewrite_weights(dir / "c3", [](auto& t) {
    t["model.Q.weight"] = torch::zeros({8, 64});
    t["model.mm_projector.weight"] = torch::zeros({64, 64});
    t["model.mm_projector.bias"] = torch::zeros({64});
  });
  dec["model_type"] = "C3";
  dec["latent_token_len"] = 8;
  write_file_atomically(dir / "c3" / "config.json", dec.dump());
  test::write_bytes(dir / "c3" / "vocab.json", "{}");
  auto info = describe_checkpoint(dir / "c3");
  const int64_t qwen = Qwen2Config::from_json(dec, "").parameter_count();
  EXPECT_EQ(info["parameters"], 2 * qwen + 8 * 64 + 64 * 64 + 64);
  EXPECT_EQ(info["encoder"]["parameters"], qwen);
  EXPECT_EQ(info["tokenizer_files"], json::array({"vocab.json"}));
  EXPECT_EQ(info["memory"]["train_bytes"], 16 * info["parameters"].get<int64_t>());
  EXPECT_THAT(format_checkpoint_info(info), HasSubstr("encoder (llm1/)"));
}

}  // namespace
}  // namespace c3
