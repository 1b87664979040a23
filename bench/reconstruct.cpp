// Compression and reconstruction throughput on this machine, side by side in one run on a tiny
// C3 (random weights): compress documents/s, and greedy reconstruction tokens/s at batch 1 and 16,
// with the KV cache and with full recomputation per token (what the cache saves).
//   bench_reconstruct [--quick] [--json FILE]
#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "c3/infer/generate.h"
#include "c3/model/c3_model.h"
#include "c3/model/c3_prompt.h"
#include "c3/torch_compat.h"
#include "c3/util/runtime.h"
#include "bench_args.h"

namespace {

using Clock = std::chrono::steady_clock;

// Ids for the C3 special tokens and nothing else: the benchmark needs no tokenizer files.
class BenchTokenizer : public c3::Tokenizer {
 public:
  std::vector<int32_t> encode(std::string_view) const override { return {100, 101, 102}; }
  std::vector<int32_t> encode_text(std::string_view text) const override { return encode(text); }
  std::string decode(const std::vector<int32_t>& ids, bool) const override { return std::string(ids.size(), 'x'); }
  std::optional<int32_t> token_id(std::string_view token) const override {
    const auto& specials = c3::c3_special_tokens();
    for (size_t i = 0; i < specials.size(); ++i)
      if (specials[i] == token) return static_cast<int32_t>(i);
    return std::nullopt;
  }
  int64_t vocab_size() const override { return 4000; }
  std::string kind() const override { return "bench"; }
  std::string source() const override { return "bench"; }
};

c3::Qwen2Config tiny(int64_t vocab) {
  c3::Qwen2Config c = c3::Qwen2Config::preset("tiny");
  c.vocab_size = vocab;
  return c;
}

}  // namespace

int main(int argc, char** argv) {
  const BenchArgs args = start_bench(argc, argv);
  const bool quick = args.quick;
  const std::string& json_path = args.json_path;
  const int cores = args.cores;
  torch::NoGradGuard no_grad;
  c3::C3Model model(c3::C3Config{tiny(4000), tiny(4000), 16});
  model->init_weights(0);
  const BenchTokenizer tokenizer;
  const c3::C3Prompt prompt(tokenizer, 16);
  std::mt19937_64 rng(3);
  const int docs = quick ? 128 : 512;
  std::vector<std::vector<int32_t>> texts(docs);
  for (auto& t : texts) {
    t.resize(64 + rng() % 64);
    for (auto& id : t) id = 10 + static_cast<int32_t>(rng() % 3900);
  }
  std::printf("C3 compress / reconstruct on CPU, tiny model (%.2fM parameters, N 16): LibTorch %s, %d threads\n",
              model->config().parameter_count() / 1e6, c3::compat::torch_version().c_str(), cores);
  nlohmann::json rows = nlohmann::json::array();

  // Compress: batches of 64 documents (64-127 tokens each).
  auto t0 = Clock::now();
  for (int start = 0; start < docs; start += 64) {
    std::vector<const std::vector<int32_t>*> batch;
    for (int i = start; i < std::min(docs, start + 64); ++i) batch.push_back(&texts[i]);
    const c3::C3Batch b = c3::make_c3_batch(prompt, batch, false);
    model->compress(b.encoder_ids, b.encoder_slots);
  }
  const double compress_docs = docs / std::chrono::duration<double>(Clock::now() - t0).count();
  std::printf("compress: %.0f documents/s (%d documents of 64-127 tokens, batches of 64)\n\n", compress_docs, docs);
  rows.push_back({{"mode", "compress"}, {"documents_per_second", compress_docs}});

  std::vector<const std::vector<int32_t>*> sixteen;
  for (int i = 0; i < 16; ++i) sixteen.push_back(&texts[i]);
  const c3::C3Batch b = c3::make_c3_batch(prompt, sixteen, false);
  const at::Tensor latents = model->compress(b.encoder_ids, b.encoder_slots);
  std::printf("%-10s %6s %10s %14s %12s\n", "decoding", "batch", "new tokens", "tokens/s", "vs cached b1");
  double baseline = 0;
  for (bool cache : {true, false}) {
    for (int64_t batch : {1, 16}) {
      c3::GenerateOptions o;
      o.max_new_tokens = quick ? 32 : 96;
      o.use_cache = cache;
      int64_t produced = 0;
      const auto start = Clock::now();
      for (int64_t r = 0; r < 16; r += batch)
        for (const auto& ids : c3::greedy_generate(model, prompt, latents.narrow(0, r, batch), o))
          produced += static_cast<int64_t>(ids.size());
      const double tps = produced / std::chrono::duration<double>(Clock::now() - start).count();
      if (cache && batch == 1) baseline = tps;
      std::printf("%-10s %6lld %10lld %14.0f %11.2fx\n", cache ? "KV cache" : "recompute", static_cast<long long>(batch),
                  static_cast<long long>(produced), tps, tps / baseline);
      std::fflush(stdout);
      rows.push_back({{"mode", cache ? "cached" : "recompute"}, {"batch", batch}, {"tokens_per_second", tps},
                      {"new_tokens", produced}});
    }
  }
  if (!json_path.empty()) std::ofstream(json_path) << rows.dump(2) << "\n";
  return 0;
}
