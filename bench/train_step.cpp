// C3 training throughput on this machine: one optimizer step (compress, decode, chunked loss,
// backward, AdamW) on random tokens, side by side with and without activation recomputation, in
// fp32 and bf16; then the estimated peak memory per GPU of the paper configuration.
//   bench_train_step [--quick] [--json FILE]
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

#include "bench_args.h"
#include "c3/model/c3_loss.h"
#include "c3/model/c3_model.h"
#include "c3/model/c3_prompt.h"
#include "c3/torch_compat.h"
#include "c3/train/memory_estimate.h"
#include "c3/train/optimizer.h"
#include "c3/util/dtype.h"
#include "c3/util/runtime.h"

namespace {

using Clock = std::chrono::steady_clock;

struct Case {
  std::string model;
  c3::C3Config config;
  int64_t batch, text_tokens, prompt_tokens;
  at::ScalarType dtype;
  bool recompute;
};

int64_t text_length(const Case& c, int64_t row) { return c.text_tokens - c.text_tokens * row / (2 * c.batch); }

// Builds a batch the way make_c3_batch lays it out, from random ids (no tokenizer needed): row r's
// text is text_tokens * (1 - r / (2 * batch)) long, right-padded as real batches are.
c3::C3Batch random_batch(const Case& c, std::mt19937_64& rng) {
  const int64_t n = c.config.latent_tokens, b = c.batch, t = c.text_tokens, p = c.prompt_tokens;
  const int64_t vocab = std::min(c.config.encoder.vocab_size, c.config.decoder.vocab_size);
  auto ids = [&](int64_t rows, int64_t cols) {
    at::Tensor x = at::empty({rows, cols}, at::kLong);
    auto a = x.accessor<int64_t, 2>();
    for (int64_t i = 0; i < rows; ++i)
      for (int64_t j = 0; j < cols; ++j) a[i][j] = static_cast<int64_t>(rng() % static_cast<uint64_t>(vocab));
    return x;
  };
  c3::C3Batch batch;
  batch.encoder_ids = ids(b, t + n + 2);
  batch.encoder_mask = at::zeros({b, t + n + 2}, at::kLong);
  batch.encoder_slots = at::zeros({b, t + n + 2}, at::kBool);
  batch.decoder_ids = ids(b, p + t + 1);
  batch.decoder_mask = at::zeros({b, p + t + 1}, at::kLong);
  batch.decoder_slots = at::zeros({b, p + t + 1}, at::kBool);
  batch.decoder_slots.narrow(1, 8, n).fill_(true);
  batch.labels = at::full({b, p + t + 1}, c3::kIgnoreIndex, at::kLong);
  for (int64_t r = 0; r < b; ++r) {
    const int64_t length = text_length(c, r);
    batch.encoder_mask[r].narrow(0, 0, length + n + 2).fill_(1);
    batch.encoder_slots[r].narrow(0, length + 1, n).fill_(true);
    batch.decoder_mask[r].narrow(0, 0, p + length + 1).fill_(1);
    batch.labels[r].narrow(0, p, length + 1).copy_(batch.decoder_ids[r].narrow(0, p, length + 1));
    batch.supervised_tokens += length + 1;
  }
  return batch;
}

double tokens_per_second(const Case& c, int steps) {
  c3::C3Model model(c.config, at::TensorOptions().dtype(c.dtype));
  model->init_weights(0);
  model->set_gradient_checkpointing(c.recompute);
  std::vector<c3::ParamGroup> groups;
  for (auto part : c3::all_c3_parts())
    groups.push_back({c3::c3_part_name(part), model->part_parameters(part), 1.0, false});
  c3::AdamW optimizer(groups, {});
  std::mt19937_64 rng(1);
  int64_t tokens = 0;  // real ones, encoder and decoder
  for (int64_t r = 0; r < c.batch; ++r)
    tokens += text_length(c, r) + c.config.latent_tokens + 2 + c.prompt_tokens + text_length(c, r) + 1;
  auto step = [&] {
    const c3::C3Batch batch = random_batch(c, rng);
    const auto out = c3::c3_loss(model, batch, 2048);
    (out.loss_sum / out.tokens).backward();
    optimizer.step(1e-4);
    optimizer.zero_grad();
  };
  step();  // warm-up
  std::vector<double> times;
  for (int i = 0; i < steps; ++i) {
    const auto t0 = Clock::now();
    step();
    times.push_back(std::chrono::duration<double>(Clock::now() - t0).count());
  }
  std::sort(times.begin(), times.end());
  return static_cast<double>(tokens) / times[times.size() / 2];
}

// Seconds of one forward + backward of `model`'s body on a right-padded batch [batch, tokens] (row r
// shorter by r/(2 batch)), with the padding mask (how c3 ran these batches before) or without it
// (the fused causal path it takes now); the median of `steps`.
double padded_forward_backward(c3::Qwen2Model& model, int64_t batch, int64_t tokens, bool with_mask, int steps) {
  const int64_t hidden = model->embed_tokens->weight.size(1);
  const at::Tensor x = at::randn({batch, tokens, hidden}) * 0.1;
  at::Tensor mask = at::zeros({batch, tokens}, at::kLong);
  for (int64_t r = 0; r < batch; ++r) mask[r].narrow(0, 0, tokens - tokens * r / (2 * batch)).fill_(1);
  std::vector<double> times;
  for (int i = 0; i <= steps; ++i) {
    const auto t0 = Clock::now();
    const at::Tensor h = model->forward(x, with_mask ? mask : at::Tensor());
    h.index({mask.to(at::kBool)}).pow(2).sum().backward();
    if (i > 0) times.push_back(std::chrono::duration<double>(Clock::now() - t0).count());
    model->zero_grad();
  }
  std::sort(times.begin(), times.end());
  return times[times.size() / 2];
}

c3::Qwen2Config cut(const std::string& preset, int64_t layers, int64_t vocab) {
  c3::Qwen2Config c = c3::Qwen2Config::preset(preset);
  c.num_hidden_layers = layers;
  c.vocab_size = vocab;
  return c;
}

}  // namespace

int main(int argc, char** argv) {
  const BenchArgs args = start_bench(argc, argv);
  const bool quick = args.quick;
  const std::string& json_path = args.json_path;
  const int cores = args.cores;
  const int steps = quick ? 3 : 7;

  // "tiny": configs/tiny-cpu.json's model (two tiny presets, 4000-token sentencepiece vocabulary).
  c3::C3Config tiny{cut("tiny", 2, 4000), cut("tiny", 2, 4000), 16};
  // "0.5b-2L": the Qwen2.5-0.5B geometry cut to 2 layers each side, 16k vocabulary.
  c3::C3Config small{cut("0.5b", 2, 16384), cut("0.5b", 2, 16384), 32};
  const std::vector<Case> cases{
      {"tiny", tiny, 8, 96, 150, at::kFloat, false},         {"tiny", tiny, 8, 96, 150, at::kFloat, true},
      {"0.5b-2L", small, 2, 256, 150, at::kFloat, false},    {"0.5b-2L", small, 2, 256, 150, at::kFloat, true},
      {"0.5b-2L", small, 2, 256, 150, at::kBFloat16, false}, {"0.5b-2L", small, 2, 256, 150, at::kBFloat16, true},
  };
  std::printf("C3 training step on CPU (median of %d): LibTorch %s, BLAS %s, %d threads\n", steps,
              c3::compat::torch_version().c_str(), c3::blas_backend().c_str(), cores);
  std::printf("%-8s %10s %-8s %6s %6s %6s %-10s %12s %12s\n", "model", "params", "dtype", "batch", "text", "N",
              "recompute", "tokens/s", "vs no-recomp");
  nlohmann::json rows = nlohmann::json::array();
  double baseline = 0;
  for (const auto& c : cases) {
    const double tps = tokens_per_second(c, steps);
    if (!c.recompute) baseline = tps;
    std::printf("%-8s %9.1fM %-8s %6lld %6lld %6lld %-10s %12.0f %11.2fx\n", c.model.c_str(),
                c.config.parameter_count() / 1e6, c3::scalar_type_name(c.dtype).c_str(),
                static_cast<long long>(c.batch), static_cast<long long>(c.text_tokens),
                static_cast<long long>(c.config.latent_tokens), c.recompute ? "yes" : "no", tps, tps / baseline);
    std::fflush(stdout);
    rows.push_back({{"model", c.model},
                    {"dtype", c3::scalar_type_name(c.dtype)},
                    {"batch", c.batch},
                    {"text_tokens", c.text_tokens},
                    {"recompute", c.recompute},
                    {"tokens_per_second", tps},
                    {"threads", cores}});
  }

  // Right-padded batches: the padding mask (before) against none (the fused causal path, now).
  std::printf(
      "\nQwen2 body forward + backward on a right-padded batch (row r shorter by r/(2 batch)), padding mask vs "
      "none:\n");
  std::printf("%-8s %6s %7s %12s %12s %9s\n", "model", "batch", "tokens", "mask s", "no mask s", "speed-up");
  for (const int64_t tokens : quick ? std::vector<int64_t>{256} : std::vector<int64_t>{256, 1024}) {
    c3::Qwen2ForCausalLM lm(cut("0.5b", 2, 16384), at::TensorOptions());
    lm->init_weights(0);
    const double masked = padded_forward_backward(lm->model, 2, tokens, true, steps);
    const double causal = padded_forward_backward(lm->model, 2, tokens, false, steps);
    std::printf("%-8s %6d %7lld %12.4f %12.4f %8.2fx\n", "0.5b-2L", 2, static_cast<long long>(tokens), masked, causal,
                masked / causal);
    rows.push_back({{"padded_attention", "0.5b-2L"},
                    {"batch", 2},
                    {"tokens", tokens},
                    {"mask_seconds", masked},
                    {"no_mask_seconds", causal}});
  }
  // What the mask held at the paper's longest sequences: bool [batch, 1, T, T], one per forward.
  std::printf("the padding mask at the paper's micro-batch 2 x 8192 tokens: %.0f MiB of bool per forward\n",
              2.0 * 8192 * 8192 / (1 << 20));

  // The paper configuration: Qwen2.5-1.5B encoder, 3B decoder, bf16 with fp32 master weights and
  // AdamW state, micro-batch 2, sequences at the 8192-token limit.
  std::printf(
      "\nEstimated peak memory per GPU, paper configuration (1.5B + 3B, bf16 weights, batch 2 x 8192 tokens,\n16 "
      "micro-batches accumulated (in fp32 with fp32 masters); shards: ZeRO-2-style sharding of gradients and optimizer "
      "state):\n");
  std::printf("%-4s %-7s %-10s %-10s %-7s %8s %8s %8s %8s %8s %8s %9s\n", "N", "master", "attention", "recompute",
              "shards", "weights", "grads", "master", "moments", "activ.", "logits", "total GiB");
  for (int64_t n : {32, 64, 100}) {
    for (bool fused : {true, false}) {
      for (bool recompute : {true, false}) {
        for (int64_t shards : {1, 8}) {
          if (n != 32 && (!fused || !recompute || shards != 1)) continue;
          for (bool master : {true, false}) {
            if (!master && (n != 32 || !fused || !recompute || shards != 1)) continue;
            c3::MemoryEstimateInput in;
            in.config = {c3::Qwen2Config::preset("1.5b"), c3::Qwen2Config::preset("3b"), n};
            in.batch = 2;
            in.decoder_tokens = 8192;
            in.encoder_tokens = 8192 - 150 + n + 2;  // the same text, without the decoder's ~150-token prompt
            in.recompute = recompute, in.fused_attention = fused, in.optimizer_shards = in.gradient_shards = shards,
            in.fp32_master = master;
            in.fp32_grad_accumulation = true;  // grad_accum 16
            const auto m = c3::estimate_training_memory(in);
            const double g = 1 << 30;
            std::printf("%-4lld %-7s %-10s %-10s %-7lld %8.1f %8.1f %8.1f %8.1f %8.1f %8.1f %9.1f\n",
                        static_cast<long long>(n), master ? "fp32" : "none", fused ? "fused" : "eager",
                        recompute ? "yes" : "no", static_cast<long long>(shards), m.weights / g, m.gradients / g,
                        m.master / g, m.moments / g, m.activations / g, m.logits / g, m.total() / g);
            rows.push_back({{"estimate", "paper"},
                            {"latent_tokens", n},
                            {"fused_attention", fused},
                            {"recompute", recompute},
                            {"shards", shards},
                            {"fp32_master", master},
                            {"total_gib", m.total() / g}});
          }
        }
      }
    }
  }
  if (!json_path.empty()) std::ofstream(json_path) << rows.dump(2) << "\n";
  return 0;
}
