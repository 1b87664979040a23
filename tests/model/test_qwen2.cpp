#include "c3/model/qwen2.h"

#include <ATen/record_function.h>
#include <gtest/gtest.h>

#include <set>

#include "c3/model/lora.h"
#include "c3/model/qwen2_io.h"
#include "test_support.h"

namespace c3 {
namespace {

using test::DeviceDtype;

// Larger init than HF's 0.02 so activations (and differences) are not vanishingly small.
Qwen2ForCausalLM make_model(bool tied, uint64_t seed, double init = 0.2) {
  Qwen2Config c = test::tiny_config(tied);
  c.initializer_range = init;
  Qwen2ForCausalLM m(c);
  m->init_weights(seed);
  // Non-trivial biases and norm weights, so their handling is visible in the outputs.
  torch::NoGradGuard g;
  auto gen = at::make_generator<at::CPUGeneratorImpl>(seed + 1);
  for (auto& p : m->named_parameters()) {
    if (p.key().find("bias") != std::string::npos || p.key().find("norm") != std::string::npos)
      p.value().add_(at::normal(0.0, 0.1, p.value().sizes(), gen));
  }
  return m;
}

double rel_err(const torch::Tensor& got, const torch::Tensor& want) {
  return (got.to(torch::kDouble) - want.to(torch::kDouble)).abs().max().item<double>() /
         want.to(torch::kDouble).abs().max().item<double>();
}

double tolerance(torch::Dtype dtype) { return dtype == torch::kFloat32 ? 2e-5 : 4e-2; }

// [B, T] int64 on `device`: row b's first lengths[b] positions are tokens (1), the rest padding (0).
torch::Tensor right_padding(const std::vector<int64_t>& lengths, int64_t T, const torch::Device& device) {
  auto mask = torch::zeros({static_cast<int64_t>(lengths.size()), T}, torch::kLong);
  for (size_t b = 0; b < lengths.size(); ++b) mask[static_cast<int64_t>(b)].narrow(0, 0, lengths[b]).fill_(1);
  return mask.to(device);
}

TEST(Qwen2, RotaryFrequenciesStayFloat32InABfloat16Model) {
  Qwen2RotaryEmbedding rope(16, 1e6);
  auto pos = torch::tensor({{0, 1, 1000}}, torch::kLong);
  auto [cos, sin] = rope.forward(pos, torch::kBFloat16);
  EXPECT_EQ(cos.scalar_type(), torch::kBFloat16);
  // angle = 1000 * theta^(-2j/d), computed in fp32 before the cast: j = 1 -> 1000 * 1e6^(-1/8).
  const double angle = 1000.0 * std::pow(1e6, -2.0 / 16);
  EXPECT_NEAR(sin[0][2][1].item<float>(), std::sin(angle), 1e-2);
  EXPECT_NEAR(cos[0][2][1 + 8].item<float>(), std::cos(angle), 1e-2);  // second half repeats the first
}

TEST(Qwen2, RMSNormCastsBackBeforeTheWeight) {
  Qwen2RMSNorm norm(4, 1e-6);
  torch::NoGradGuard g;
  norm->weight.fill_(3.0);
  norm->to(torch::kBFloat16);
  auto x = torch::tensor({{1.0, 2.0, 3.0, 4.01}}, torch::kBFloat16);
  auto xf = x.to(torch::kFloat);
  auto expect = (3.0 * (xf * torch::rsqrt(xf.pow(2).mean(-1, true) + 1e-6)).to(torch::kBFloat16)).to(torch::kFloat);
  EXPECT_TRUE(torch::equal(norm(x).to(torch::kFloat), expect));
}

class Qwen2DeviceDtype : public test::DeviceDtypeTest {
 protected:
  Qwen2ForCausalLM model(bool tied = true) {
    auto m = make_model(tied, 7);
    m->to(GetParam().device, GetParam().dtype);
    return m;
  }
  torch::Tensor ids(int64_t b, int64_t t, int64_t vocab) {
    return torch::randint(0, vocab, {b, t}, torch::kLong).to(GetParam().device);
  }
};

TEST_P(Qwen2DeviceDtype, IncrementalDecodingWithTheCacheMatchesAFullForward) {
  torch::NoGradGuard g;
  torch::manual_seed(1);
  auto m = model();
  auto x = ids(2, 80, m->config().vocab_size);  // crosses the cache's first growth (64)
  auto full = m->forward(x);
  KVCache cache;
  std::vector<torch::Tensor> parts{m->logits(m->prefill(m->embed(x.narrow(1, 0, 20)), cache))};
  parts.push_back(m->logits(m->prefill(m->embed(x.narrow(1, 20, 30)), cache)));  // chunked prefill after a prefix
  for (int64_t t = 50; t < 80; ++t) parts.push_back(m->logits(m->step(m->embed(x.narrow(1, t, 1)), cache)));
  EXPECT_EQ(cache.length, 80);
  EXPECT_LT(rel_err(torch::cat(parts, 1), full), tolerance(GetParam().dtype));
}

// Reserved once for the whole decode (prompt + new tokens): no forward regrows it, and the
// results are those of the growing cache.
TEST_P(Qwen2DeviceDtype, AReservedCacheIsNeverReallocatedAndDecodesTheSame) {
  torch::NoGradGuard g;
  torch::manual_seed(1);
  auto m = model();
  auto x = ids(2, 80, m->config().vocab_size);
  const auto embeds = m->forward(x.narrow(1, 0, 1));  // for the cache's dtype and device
  KVCache reserved, grown;
  m->model->reserve(reserved, 2, 80, embeds.options());
  const void* storage = reserved.keys[0].data_ptr();
  std::vector<torch::Tensor> a{m->prefill(m->embed(x.narrow(1, 0, 50)), reserved)},
      b{m->prefill(m->embed(x.narrow(1, 0, 50)), grown)};
  for (int64_t t = 50; t < 80; ++t) {
    a.push_back(m->step(m->embed(x.narrow(1, t, 1)), reserved));
    b.push_back(m->step(m->embed(x.narrow(1, t, 1)), grown));
  }
  EXPECT_EQ(reserved.capacity(), 80);
  EXPECT_EQ(reserved.keys[0].data_ptr(), storage) << "reallocated while decoding";
  EXPECT_EQ(grown.capacity(), 128) << "the growing cache doubled from 64";
  EXPECT_TRUE(torch::cat(a, 1).equal(torch::cat(b, 1)));
  EXPECT_THROW(m->model->reserve(reserved, 3, 100, embeds.options()), Error);
}

TEST_P(Qwen2DeviceDtype, RightPaddedBatchMatchesEachSequenceAlone) {
  torch::NoGradGuard g;
  torch::manual_seed(2);
  auto m = model();
  const std::vector<int64_t> lengths{9, 5, 1};
  const int64_t T = 9, B = 3;
  auto x = ids(B, T, m->config().vocab_size);
  auto batched = m->forward(x, right_padding(lengths, T, GetParam().device));
  for (int64_t b = 0; b < B; ++b) {
    auto alone = m->forward(x[b].narrow(0, 0, lengths[b]).unsqueeze(0));
    EXPECT_LT(rel_err(batched[b].narrow(0, 0, lengths[b]), alone[0]), tolerance(GetParam().dtype)) << "row " << b;
  }
}

// How C3 runs its right-padded batches (training, compress, eval, prompts): without a mask, on the
// fused causal path. Every real token's output and every gradient through real tokens is the
// masked path's; only padding positions (never read) differ.
TEST_P(Qwen2DeviceDtype, RightPaddedBatchWithoutAMaskEqualsTheMaskedPathAtRealTokens) {
  torch::manual_seed(5);
  auto m = model();
  const std::vector<int64_t> lengths{9, 4, 7};
  const int64_t T = 9, B = 3;
  auto x = ids(B, T, m->config().vocab_size);
  const auto mask = right_padding(lengths, T, GetParam().device);
  const auto real = mask.to(torch::kBool);
  std::vector<torch::Tensor> outputs, grads;
  for (const auto& padding : {mask, torch::Tensor()}) {
    m->zero_grad();
    const auto h = m->model->forward(m->embed(x), padding);
    const auto kept = h.index({real});  // [real tokens, hidden]
    (kept.to(torch::kFloat) * kept.to(torch::kFloat)).sum().backward();
    outputs.push_back(kept.detach());
    for (const auto& p : m->parameters()) grads.push_back(p.grad().clone());
  }
  EXPECT_LT(rel_err(outputs[1], outputs[0]), tolerance(GetParam().dtype));
  const size_t n = m->parameters().size();
  for (size_t i = 0; i < n; ++i)
    EXPECT_LT(rel_err(grads[n + i], grads[i]), 5 * tolerance(GetParam().dtype)) << "parameter " << i;
}

TEST_P(Qwen2DeviceDtype, RightPaddedBatchDecodesWithTheCacheLikeEachSequenceAlone) {
  torch::NoGradGuard g;
  torch::manual_seed(3);
  auto m = model(/*tied=*/false);
  const std::vector<int64_t> lengths{6, 3};
  const int64_t T = 6, B = 2, steps = 4, V = m->config().vocab_size;
  auto x = ids(B, T, V);
  auto next = ids(B, steps, V);
  auto mask = right_padding(lengths, T, GetParam().device);
  KVCache cache;
  m->prefill(m->embed(x), cache, mask);
  std::vector<torch::Tensor> batched;
  for (int64_t s = 0; s < steps; ++s) batched.push_back(m->logits(m->step(m->embed(next.narrow(1, s, 1)), cache)));
  for (int64_t b = 0; b < B; ++b) {
    auto seq = torch::cat({x[b].narrow(0, 0, lengths[b]), next[b]}).unsqueeze(0);
    auto alone = m->forward(seq).narrow(1, lengths[b], steps)[0];
    auto got = torch::cat(batched, 1)[b];
    EXPECT_LT(rel_err(got, alone), tolerance(GetParam().dtype)) << "row " << b;
  }
}

TEST_P(Qwen2DeviceDtype, OutputRowsEqualTheFullForwardAtThoseRowsWithTheSameGradients) {
  torch::manual_seed(4);
  auto m = model();
  const std::vector<int64_t> lengths{9, 6};
  auto x = ids(2, 9, m->config().vocab_size);
  const auto mask = right_padding(lengths, 9, GetParam().device);
  const auto rows = torch::tensor({{8, 2, 5}, {5, 0, 3}}, torch::kLong).to(GetParam().device);
  for (const auto& padding : {torch::Tensor(), mask}) {
    for (bool checkpointing : {false, true}) {
      m->model->gradient_checkpointing = checkpointing;
      m->zero_grad();
      const auto full = m->model->forward(m->embed(x), padding);
      const auto want = full.gather(1, rows.unsqueeze(-1).expand({2, 3, full.size(-1)}));
      want.sum().backward();
      std::vector<torch::Tensor> want_grads;
      for (const auto& p : m->parameters()) want_grads.push_back(p.grad().clone());
      m->zero_grad();
      const auto got = m->hidden_states(m->embed(x), padding, rows);
      got.sum().backward();
      EXPECT_LT(rel_err(got, want), tolerance(GetParam().dtype));
      const auto params = m->parameters();
      for (size_t i = 0; i < params.size(); ++i)
        EXPECT_LT(rel_err(params[i].grad(), want_grads[i]), 5 * tolerance(GetParam().dtype)) << "parameter " << i;
    }
  }
  m->model->gradient_checkpointing = false;
  // With a cache: the prefill's rows are the cache's new positions, and the cache is still complete.
  torch::NoGradGuard g;
  KVCache cache, plain;
  const auto last = m->prefill(m->embed(x), cache, {}, torch::full({2, 1}, 8, torch::kLong).to(x.device()));
  const auto full = m->prefill(m->embed(x), plain);
  EXPECT_LT(rel_err(last.squeeze(1), full.select(1, 8)), tolerance(GetParam().dtype));
  const auto next = m->embed(ids(2, 1, m->config().vocab_size));
  EXPECT_LT(rel_err(m->step(next, cache), m->step(next, plain)), tolerance(GetParam().dtype));
}

// What scaled_dot_product_attention was called with on this thread while it lives: the query's and
// the keys' head counts and enable_gqa per call, and every ATen operator's name (the kernel it chose).
class AttentionCalls {
 public:
  struct Call {
    int64_t query_heads, key_heads;
    bool enable_gqa;
  };
  AttentionCalls() {
    calls_.clear(), ops_.clear();
    handle_ = at::addThreadLocalCallback(
        at::RecordFunctionCallback([](const at::RecordFunction& fn) -> std::unique_ptr<at::ObserverContext> {
          const std::string name = fn.name();
          ops_.insert(name);
          const auto inputs = fn.inputs();
          if (name == "aten::scaled_dot_product_attention" && inputs.size() >= 8)
            calls_.push_back({inputs[0].toTensor().size(1), inputs[1].toTensor().size(1), inputs[7].toBool()});
          return nullptr;
        })
            .needsInputs(true)
            .scopes({at::RecordScope::FUNCTION}));
  }
  ~AttentionCalls() { at::removeCallback(handle_); }
  const std::vector<Call>& calls() const { return calls_; }
  bool saw(const std::string& op) const { return ops_.count(op) > 0; }

 private:
  static inline thread_local std::vector<Call> calls_;
  static inline thread_local std::set<std::string> ops_;
  at::CallbackHandle handle_;
};

// A decoding step over a masked cache (prompts of unequal length, fixed shapes as on CUDA): the
// query heads sharing a kv head are folded into query rows, so attention runs with as many query
// heads as kv heads and without enable_gqa, which CUDA's fused kernels lack with a mask (the math
// kernel would repeat K and V per step); on CUDA a fused kernel runs. The result equals the
// dynamic-shape step's.
TEST_P(Qwen2DeviceDtype, ADecodingStepOverAMaskedCacheTakesTheFusedPathWithoutRepeatingKeys) {
  torch::NoGradGuard g;
  torch::manual_seed(5);
  auto m = model();
  ASSERT_GT(m->config().num_attention_heads, m->config().num_key_value_heads) << "a grouped-query config";
  const auto x = m->embed(ids(2, 7, m->config().vocab_size));
  const auto mask = right_padding({7, 4}, 7, GetParam().device);
  const auto next = m->embed(ids(2, 1, m->config().vocab_size));
  KVCache fixed, dynamic;
  m->reserve(fixed, 2, 16, x.options());
  m->prefill(x, fixed, mask);
  m->prefill(x, dynamic, mask);
  fixed.fix_shapes();
  at::Tensor got;
  {
    AttentionCalls seen;
    got = m->step(next, fixed);
    ASSERT_EQ(seen.calls().size(), static_cast<size_t>(m->config().num_hidden_layers));
    for (const auto& call : seen.calls()) {
      EXPECT_EQ(call.query_heads, call.key_heads);
      EXPECT_FALSE(call.enable_gqa);
    }
    EXPECT_FALSE(seen.saw("aten::repeat_interleave"));
    EXPECT_FALSE(seen.saw("aten::_scaled_dot_product_attention_math"));
    if (GetParam().device.is_cuda()) {
      EXPECT_TRUE(seen.saw("aten::_scaled_dot_product_efficient_attention") ||
                  seen.saw("aten::_scaled_dot_product_flash_attention") ||
                  seen.saw("aten::_scaled_dot_product_cudnn_attention"));
    }
  }
  EXPECT_LT(rel_err(got, m->step(next, dynamic)), tolerance(GetParam().dtype));
}

// Fused q/k/v and gate/up GEMMs (inference) give the unfused outputs: bit for bit in fp32 on the
// CPU, within rounding where another GEMM shape may round differently. The fused weights are the
// parts' own memory, so a weight changed after fusing is what the fused path computes with.
TEST_P(Qwen2DeviceDtype, FusedProjectionsGiveTheUnfusedOutputsAndFollowTheirWeights) {
  torch::manual_seed(3);
  // The MLP width a multiple of 32: ATen runs an elementwise op 2 vectors at a time and the rest of
  // each contiguous run in scalar code, whose silu rounds differently; the fused gate/up output is
  // read row by row, so with 176 its rows would end in scalar code where the unfused ones do not.
  Qwen2Config config = test::tiny_config(true);
  config.intermediate_size = 192;
  Qwen2ForCausalLM m(config);
  m->init_weights(7);
  m->to(GetParam().device, GetParam().dtype);
  const auto x = ids(2, 24, m->config().vocab_size);
  const auto mask = right_padding({24, 17}, 24, GetParam().device);
  auto run = [&] {  // a padded forward, then a prefill and cached steps: every path through attention
    std::vector<torch::Tensor> out{m->forward(x, mask).flatten()};
    KVCache cache;
    out.push_back(m->logits(m->prefill(m->embed(x.narrow(1, 0, 16)), cache)).flatten());
    for (int64_t t = 16; t < 22; ++t) out.push_back(m->logits(m->step(m->embed(x.narrow(1, t, 1)), cache)).flatten());
    return torch::cat(out).detach();
  };
  auto expect_same = [&](const torch::Tensor& got, const torch::Tensor& want) {
    if (GetParam().device.is_cpu() && GetParam().dtype == torch::kFloat32)
      EXPECT_TRUE(torch::equal(got, want)) << "largest difference " << (got - want).abs().max().item<double>();
    else
      EXPECT_LT(rel_err(got, want), tolerance(GetParam().dtype));
  };
  torch::Tensor unfused;
  {
    torch::NoGradGuard g;
    unfused = run();
  }
  ASSERT_EQ(m->fuse_projections(), 2 * m->config().num_hidden_layers);
  torch::NoGradGuard g;
  {
    SCOPED_TRACE("fused against unfused");
    expect_same(run(), unfused);
  }

  auto& attention = *m->model->layers[0]->as<Qwen2DecoderLayer>()->self_attn;
  attention.k_proj->weight.mul_(1.5);  // as a checkpoint load into the part would
  const torch::Tensor fused = run();
  torch::Tensor reference;  // with gradients on, the parts run one by one
  {
    torch::AutoGradMode grad(true);
    reference = run();
  }
  EXPECT_FALSE(torch::equal(fused, unfused));
  SCOPED_TRACE("after a weight changed, fused against gradients on");
  expect_same(fused, reference);
}

TEST(Qwen2, ProjectionsWithLoraStayUnfused) {
  auto m = make_model(true, 7);
  LoraConfig lora;
  lora.rank = 2, lora.alpha = 4, lora.targets = {"q_proj"};
  add_lora(*m, lora, 1);
  EXPECT_EQ(m->fuse_projections(), m->config().num_hidden_layers);  // the MLPs only
}

TEST_P(Qwen2DeviceDtype, SavedCheckpointLoadsBackWithTheSameOutputs) {
  torch::NoGradGuard g;
  for (bool tied : {true, false}) {
    test::TempDir dir;
    auto m = model(tied);
    SaveOptions save;
    save.max_shard_bytes = 40000;  // several shards + index
    save_qwen2(m, dir / "ckpt", save);
    EXPECT_TRUE(std::filesystem::exists(dir / "ckpt" / "model.safetensors.index.json"));
    LoadOptions load;
    load.device = GetParam().device;
    auto back = load_qwen2(dir / "ckpt", load);
    EXPECT_EQ(back->parameters().front().scalar_type(), GetParam().dtype) << "default: the stored dtype";
    EXPECT_EQ(back->config().tie_word_embeddings, tied);
    auto x = ids(1, 7, m->config().vocab_size);
    EXPECT_TRUE(torch::equal(back->forward(x), m->forward(x)));
  }
}

INSTANTIATE_TEST_SUITE_P(DeviceDtype, Qwen2DeviceDtype, testing::ValuesIn(test::device_dtype_params()),
                         test::param_name);

TEST(Qwen2, ParameterCountMatchesTheConfigAndTiedModelsStoreNoLmHead) {
  for (bool tied : {true, false}) {
    auto m = make_model(tied, 1);
    int64_t n = 0;
    bool has_lm_head = false;
    for (const auto& p : m->named_parameters()) {
      n += p.value().numel();
      has_lm_head = has_lm_head || p.key() == "lm_head.weight";
    }
    EXPECT_EQ(n, m->config().parameter_count());
    EXPECT_EQ(has_lm_head, !tied);
  }
  EXPECT_EQ(Qwen2Config::preset("0.5b").parameter_count(), 494032768);  // Qwen2.5-0.5B's published count
}

TEST(Qwen2, InputsEmbedsPathEqualsTheTokenPath) {
  torch::NoGradGuard g;
  auto m = make_model(true, 5);
  auto x = torch::randint(0, m->config().vocab_size, {2, 6}, torch::kLong);
  auto via_embeds = m->logits(m->model->forward(m->embed(x)));
  EXPECT_TRUE(torch::equal(via_embeds, m->forward(x)));
  // Overwriting rows of inputs_embeds (as C3 does with its slots) changes those positions onward only.
  auto e = m->embed(x);
  e[0][3] = torch::randn({m->config().hidden_size});
  auto changed = m->logits(m->model->forward(e));
  EXPECT_TRUE(torch::equal(changed[0].narrow(0, 0, 3), via_embeds[0].narrow(0, 0, 3)));
  EXPECT_FALSE(torch::allclose(changed[0][3], via_embeds[0][3]));
}

}  // namespace
}  // namespace c3
