// Greedy reconstruction (spec section 2): the no-repeat n-gram ban, cached vs recomputed decoding,
// batched vs one at a time, and the decoding of the output.
#include <gtest/gtest.h>

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
