// Greedy reconstruction (spec section 2): the no-repeat n-gram ban, cached vs recomputed decoding,
// batched vs one at a time, and the decoding of the output.
#include <gtest/gtest.h>

#include <algorithm>
#include <set>

#include "c3/infer/generate.h"
#include "test_support.h"

namespace c3 {
namespace {

const test::ByteTokenizer kTokenizer;

TEST(NoRepeatNgram, BansWhatWouldCompleteASeenNgram) {
  NoRepeatNgram three(3);
  for (int32_t t : {1, 2, 3, 1}) three.append(t);
  EXPECT_TRUE(three.banned().empty()) << "(3, 1) was never followed";
  three.append(2);
  EXPECT_EQ(three.banned(), std::vector<int32_t>({3})) << "1 2 3 seen; after 1 2, 3 is banned";
  three.append(4);
  three.append(1);
  three.append(2);
  auto banned = three.banned();
  std::sort(banned.begin(), banned.end());
  EXPECT_EQ(banned, std::vector<int32_t>({3, 4}));
  NoRepeatNgram short_seq(4);
  short_seq.append(7);
  short_seq.append(7);
  EXPECT_TRUE(short_seq.banned().empty()) << "fewer than n-1 tokens: nothing to ban";
  NoRepeatNgram off(0);
  off.append(1), off.append(1);
  EXPECT_TRUE(off.banned().empty());
}

struct Tiny {
  C3Model model{test::tiny_c3_config(3)};
  C3Prompt prompt{kTokenizer, 3};
  std::vector<std::vector<int32_t>> texts{kTokenizer.encode("alpha beta"), kTokenizer.encode("gamma"),
                                          kTokenizer.encode("delta epsilon zeta")};
  at::Tensor latents;
  Tiny() {
    model->init_weights(7);
    torch::NoGradGuard no_grad;
    const C3Batch batch = make_c3_batch(prompt, {&texts[0], &texts[1], &texts[2]}, false);
    latents = model->compress(batch.encoder_ids, batch.encoder_slots);
  }
};

TEST(Generate, CachedDecodingEqualsFullRecomputation) {
  Tiny s;
  GenerateOptions cached, full;
  cached.max_new_tokens = full.max_new_tokens = 16;
  full.use_cache = false;
  const auto a = greedy_generate(s.model, s.prompt, s.latents, cached);
  const auto b = greedy_generate(s.model, s.prompt, s.latents, full);
  ASSERT_EQ(a.size(), 3u);
  EXPECT_EQ(a, b);
  EXPECT_EQ(a[0].size(), 16u) << "an untrained model runs to the limit";
}

TEST(Generate, BatchedEqualsOneAtATime) {
  Tiny s;
  GenerateOptions o;
  o.max_new_tokens = 16;
  const auto batched = greedy_generate(s.model, s.prompt, s.latents, o);
  for (int64_t r = 0; r < 3; ++r) {
    const auto single = greedy_generate(s.model, s.prompt, s.latents.narrow(0, r, 1), o);
    EXPECT_EQ(single[0], batched[r]) << "row " << r;
  }
}

TEST(Generate, RightPaddedPromptsDecodeAsEachAloneWithAndWithoutTheCache) {
  torch::NoGradGuard no_grad;
  Qwen2ForCausalLM lm(test::tiny_config());
  lm->init_weights(11);
  const std::vector<std::vector<int32_t>> prompts{{5, 9, 14, 3, 22, 8}, {40}, {7, 7, 31}};
  at::Tensor ids = at::zeros({3, 6}, at::kLong);
  for (size_t r = 0; r < prompts.size(); ++r)
    for (size_t t = 0; t < prompts[r].size(); ++t) ids[r][t] = prompts[r][t];
  GenerateOptions o;
  o.max_new_tokens = 20;
  o.no_repeat_ngram_size = 3;
  for (bool cache : {true, false}) {
    o.use_cache = cache;
    const auto batched = greedy_decode(lm, lm->embed(ids), prompts, /*stop_id=*/1, o);
    for (size_t r = 0; r < prompts.size(); ++r) {
      const auto n = static_cast<int64_t>(prompts[r].size());
      const auto alone = greedy_decode(lm, lm->embed(ids[r].narrow(0, 0, n).unsqueeze(0)), {prompts[r]}, 1, o);
      EXPECT_EQ(batched[r], alone[0]) << "row " << r << (cache ? " (cache)" : " (recomputed)");
    }
  }
}

// Rows whose stop token comes at different steps: a stop token is picked that the rows produce at
// different steps when they never stop, so each row's expected output is its unstopped one cut there.
class DecodeDeviceDtype : public test::DeviceDtypeTest {};

TEST_P(DecodeDeviceDtype, RowsEndingAtDifferentStepsLeaveTheBatchAndEachDecodesAsAlone) {
  const auto [device, dtype] = GetParam();
  torch::NoGradGuard no_grad;
  Qwen2ForCausalLM lm(test::tiny_config());
  lm->init_weights(12);
  lm->to(device, dtype);
  // Equal prompts and unequal ones (padded: the cache then holds rows of different lengths).
  for (const bool padded : {false, true}) {
    std::vector<std::vector<int32_t>> prompts;
    for (int32_t r = 0; r < 6; ++r) prompts.push_back({5 + r, 9, 14 + 3 * r, 3, 22, 8 + r});
    if (padded) prompts[1].resize(2), prompts[4].resize(4);
    at::Tensor ids = at::zeros({6, 6}, at::kLong);
    for (size_t r = 0; r < prompts.size(); ++r)
      for (size_t t = 0; t < prompts[r].size(); ++t)
        ids[static_cast<int64_t>(r)][static_cast<int64_t>(t)] = prompts[r][t];
    const at::Tensor embeds = lm->embed(ids.to(device));
    GenerateOptions o;
    o.max_new_tokens = 24;
    o.no_repeat_ngram_size = 4;
    const auto endless = greedy_decode(lm, embeds, prompts, /*stop_id=*/-1, o);
    // The stop token whose first appearances are spread over the most different steps.
    int32_t stop = -1;
    std::vector<std::vector<int32_t>> want;
    size_t spread = 0;
    std::set<int32_t> candidates;
    for (const auto& row : endless) candidates.insert(row.begin(), row.end());
    for (int32_t candidate : candidates) {
      std::vector<std::vector<int32_t>> cut;
      std::set<size_t> ends;
      for (const auto& row : endless) {
        const auto at = std::find(row.begin(), row.end(), candidate);
        cut.emplace_back(row.begin(), at);
        ends.insert(cut.back().size());
      }
      if (ends.size() > spread) spread = ends.size(), stop = candidate, want = cut;
    }
    ASSERT_GE(spread, 3u) << "the rows should end at three or more different steps";
    for (const bool fixed : {false, true}) {
      DecodeStats stats;
      o.fixed_shapes = fixed, o.stats = &stats;
      EXPECT_EQ(greedy_decode(lm, embeds, prompts, stop, o), want) << (fixed ? "fixed" : "dynamic") << " shapes";
      EXPECT_GE(stats.batch_shrinks, 1) << "finished rows left the batch";
      if (device.is_cuda() && fixed) {
        EXPECT_GT(stats.graph_replays, 0) << "the token step was replayed as a CUDA graph";
      } else {
        EXPECT_EQ(stats.graph_replays, 0);
      }
      o.stats = nullptr;
      for (size_t r = 0; r < prompts.size(); ++r) {
        const auto n = static_cast<int64_t>(prompts[r].size());
        EXPECT_EQ(
            greedy_decode(lm, embeds[static_cast<int64_t>(r)].narrow(0, 0, n).unsqueeze(0), {prompts[r]}, stop, o)[0],
            want[r])
            << "row " << r << (padded ? ", padded prompts" : "");
      }
    }
  }
}

// Greedy ids are compared exactly: float32 on each device.
std::vector<test::DeviceDtype> float32_params() {
  std::vector<test::DeviceDtype> out;
  for (const auto& p : test::device_dtype_params())
    if (p.dtype == at::kFloat) out.push_back(p);
  return out;
}
INSTANTIATE_TEST_SUITE_P(DeviceDtype, DecodeDeviceDtype, testing::ValuesIn(float32_params()), test::param_name);

TEST(Generate, TheBanShapesTheOutput) {
  Tiny s;
  GenerateOptions o;
  o.max_new_tokens = 24;
  o.no_repeat_ngram_size = 1;  // no token may appear twice in prompt + output
  const auto out = greedy_generate(s.model, s.prompt, s.latents, o);
  const std::set<int32_t> prompt_ids(s.prompt.decoder_prompt().begin(), s.prompt.decoder_prompt().end());
  for (const auto& row : out) {
    std::set<int32_t> seen;
    for (int32_t t : row) {
      EXPECT_EQ(prompt_ids.count(t), 0u);
      EXPECT_TRUE(seen.insert(t).second) << "token " << t << " repeated";
    }
  }
  o.no_repeat_ngram_size = 0;
  const auto free = greedy_generate(s.model, s.prompt, s.latents, o);
  EXPECT_NE(free, out) << "without the ban an untrained model repeats itself";
}

TEST(Generate, OutputIsDecodedAsTheSpecSays) {
  const auto ids = kTokenizer.encode("  the text \n<|im_end|> ");
  EXPECT_EQ(decode_reconstruction(kTokenizer, ids), "the text");
  EXPECT_EQ(decode_reconstruction(kTokenizer, kTokenizer.encode("a<|im_end|>b")), "a<|im_end|>b");
}

}  // namespace
}  // namespace c3
