// Compression and reconstruction throughput on this machine, side by side in one run on a tiny
// C3 (random weights): compress documents/s, and greedy reconstruction tokens/s at batch 1 and 16,
// with the KV cache and with full recomputation per token (what the cache saves), with the ATen ops
// dispatched per decoding step (each a kernel launch on a GPU); then the shipped prose model
// (models/c3-prose-n16) reconstructing texts of different lengths, whose rows finish at different
// steps.
//   bench_reconstruct [--quick] [--json FILE]
#include <ATen/record_function.h>
#include <torch/torch.h>

#include <atomic>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "bench_args.h"
#include "c3/infer/generate.h"
#include "c3/model/c3_io.h"
#include "c3/model/c3_model.h"
#include "c3/model/c3_prompt.h"
#include "c3/tokenizer/tokenizer.h"
#include "c3/torch_compat.h"
#include "c3/util/runtime.h"

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

// Counts the ATen operators dispatched on this thread while it lives (nested ones too: what the
// dispatcher and, on a GPU, the kernel launches pay for), in all and outside greedy_decode's token
// step (the "c3::token_step" scope, which a CUDA graph replays in one launch).
class OpCounter {
 public:
  OpCounter() {
    count_ = outside_ = depth_ = 0;
    handle_ = at::addThreadLocalCallback(at::RecordFunctionCallback(
                                             [](const at::RecordFunction& fn) -> std::unique_ptr<at::ObserverContext> {
                                               if (fn.scope() == at::RecordScope::USER_SCOPE) {
                                                 depth_ += std::string(fn.name()) == "c3::token_step";
                                               } else {
                                                 ++count_, outside_ += depth_ == 0;
                                               }
                                               return nullptr;
                                             },
                                             [](const at::RecordFunction& fn, at::ObserverContext*) {
                                               if (fn.scope() == at::RecordScope::USER_SCOPE)
                                                 depth_ -= std::string(fn.name()) == "c3::token_step";
                                             })
                                             .scopes({at::RecordScope::FUNCTION, at::RecordScope::USER_SCOPE}));
  }
  ~OpCounter() { at::removeCallback(handle_); }
  int64_t count() const { return count_; }
  int64_t outside_step() const { return outside_; }

 private:
  static inline thread_local int64_t count_ = 0, outside_ = 0, depth_ = 0;
  at::CallbackHandle handle_;
};

// Decoding steps of a generation: its longest row (plus the step that produced <|im_end|>).
int64_t decode_steps(const std::vector<std::vector<int32_t>>& out, int64_t max_new) {
  int64_t longest = 0;
  for (const auto& r : out) longest = std::max<int64_t>(longest, static_cast<int64_t>(r.size()));
  return std::min(longest + 1, max_new);
}

c3::Qwen2Config tiny(int64_t vocab) {
  c3::Qwen2Config c = c3::Qwen2Config::preset("tiny");
  c.vocab_size = vocab;
  return c;
}

// The shipped prose model on pieces of its own model card, 24-120 tokens: with real reconstruction the
// rows of a batch end at different steps.
void shipped_model_section(bool quick, nlohmann::json& rows) {
  const std::string dir = C3_MODELS_DIR "/c3-prose-n16";
  c3::C3Model model = c3::load_c3(dir);
  const auto tokenizer = c3::load_tokenizer(dir);
  const c3::C3Prompt prompt(*tokenizer, model->config().latent_tokens);
  std::ifstream card(dir + "/README.md");
  const std::string text((std::istreambuf_iterator<char>(card)), std::istreambuf_iterator<char>());
  const std::vector<int32_t> ids = tokenizer->encode_text(text);
  std::mt19937_64 rng(5);
  const int count = quick ? 32 : 64;
  std::vector<std::vector<int32_t>> texts;
  for (size_t at = 0; static_cast<int>(texts.size()) < count;) {
    const size_t length = 24 + rng() % 97;
    if (at + length > ids.size()) at = 0;
    texts.emplace_back(ids.begin() + static_cast<int64_t>(at), ids.begin() + static_cast<int64_t>(at + length));
    at += length;
  }
  std::printf("\nshipped model (%s, N %lld), %d texts of 24-120 tokens, rows ending at their own steps:\n",
              "c3-prose-n16", static_cast<long long>(model->config().latent_tokens), count);
  std::printf("%6s %10s %14s %12s\n", "batch", "new tokens", "tokens/s", "ops/step");
  for (const int64_t batch : {1, 16}) {
    c3::GenerateOptions o;
    o.max_new_tokens = 160;
    int64_t produced = 0, steps = 0, ops = 0;
    const auto start = Clock::now();
    for (int first = 0; first < count; first += static_cast<int>(batch)) {
      std::vector<const std::vector<int32_t>*> chunk;
      for (int i = first; i < std::min(count, first + static_cast<int>(batch)); ++i) chunk.push_back(&texts[i]);
      const c3::C3Batch b = c3::make_c3_batch(prompt, chunk, false);
      const at::Tensor latents = model->compress(b.encoder_ids, b.encoder_slots);
      const OpCounter counter;
      const auto out = c3::greedy_generate(model, prompt, latents, o);
      ops += counter.count(), steps += decode_steps(out, o.max_new_tokens);
      for (const auto& r : out) produced += static_cast<int64_t>(r.size());
    }
    const double tps = produced / std::chrono::duration<double>(Clock::now() - start).count();
    std::printf("%6lld %10lld %14.0f %12.0f\n", static_cast<long long>(batch), static_cast<long long>(produced), tps,
                static_cast<double>(ops) / static_cast<double>(steps));
    rows.push_back({{"mode", "shipped"},
                    {"batch", batch},
                    {"tokens_per_second", tps},
                    {"new_tokens", produced},
                    {"ops_per_step", static_cast<double>(ops) / static_cast<double>(steps)}});
  }
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
  std::printf("%-10s %6s %10s %14s %12s %12s %18s\n", "decoding", "batch", "new tokens", "tokens/s", "vs cached b1",
              "ops/step", "outside token step");
  double baseline = 0;
  // "fixed shapes": the token step CUDA replays as a graph, run eagerly here (its ops are what one
  // graph launch replaces on a GPU).
  for (const std::string mode : {"KV cache", "fixed", "recompute"}) {
    const bool cache = mode != "recompute";
    for (int64_t batch : {1, 16}) {
      c3::GenerateOptions o;
      o.max_new_tokens = quick ? 32 : 96;
      o.use_cache = cache;
      o.fixed_shapes = mode == "fixed";
      int64_t produced = 0;
      const auto start = Clock::now();
      for (int64_t r = 0; r < 16; r += batch)
        for (const auto& ids : c3::greedy_generate(model, prompt, latents.narrow(0, r, batch), o))
          produced += static_cast<int64_t>(ids.size());
      const double tps = produced / std::chrono::duration<double>(Clock::now() - start).count();
      double ops_per_step = 0, outside_per_step = 0;  // one more generation, counted
      {
        const OpCounter ops;
        const auto out = c3::greedy_generate(model, prompt, latents.narrow(0, 0, batch), o);
        const auto steps = static_cast<double>(decode_steps(out, o.max_new_tokens));
        ops_per_step = static_cast<double>(ops.count()) / steps;
        outside_per_step = static_cast<double>(ops.outside_step()) / steps;
      }
      if (mode == "KV cache" && batch == 1) baseline = tps;
      std::printf("%-10s %6lld %10lld %14.0f %11.2fx %12.0f %18.0f\n", mode.c_str(), static_cast<long long>(batch),
                  static_cast<long long>(produced), tps, tps / baseline, ops_per_step, outside_per_step);
      std::fflush(stdout);
      rows.push_back({{"mode", mode},
                      {"batch", batch},
                      {"tokens_per_second", tps},
                      {"new_tokens", produced},
                      {"ops_per_step", ops_per_step},
                      {"ops_per_step_outside_token_step", outside_per_step}});
    }
  }
  shipped_model_section(quick, rows);
  if (!json_path.empty()) std::ofstream(json_path) << rows.dump(2) << "\n";
  return 0;
}
