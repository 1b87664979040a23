// C3Codec (c3/infer/codec.h), the one text <-> latents path: spans, batching by length, joining,
// and the errors of its string API. The model is untrained (its outputs are deterministic
// nonsense), so these check the plumbing against the model's own one-span-at-a-time results; the
// round trip of a trained model is checked in tests/cli (CodecApi).
#include "c3/infer/codec.h"

#include <gtest/gtest.h>

#include "c3/util/error.h"
#include "test_support.h"

namespace c3 {
namespace {

std::shared_ptr<const Tokenizer> byte_tokenizer() { return std::make_shared<const test::ByteTokenizer>(); }

C3Codec tiny_codec() {
  C3Model model(test::tiny_c3_config(3));
  model->init_weights(7);
  model->eval();
  auto tokenizer = byte_tokenizer();
  C3Prompt prompt(*tokenizer, 3);
  return C3Codec(model, tokenizer, prompt);
}

const std::vector<std::string> kTexts{"alpha beta gamma delta epsilon\n", "zeta",
                                      "eta theta iota kappa lambda mu nu\n\n"};

CodecOptions small_batches() {
  CodecOptions o;
  o.max_span_tokens = 12;  // bytes: every text but "zeta" is cut
  o.batch_tokens = 40;     // a few spans per batch
  o.batch_size = 2;
  o.generate.max_new_tokens = 6;
  return o;
}

TEST(Codec, EncodeCutsEachTextAsCompressDoesAndCompressesEachSpanAsIfAlone) {
  C3Codec codec = tiny_codec();
  const CodecOptions o = small_batches();
  const auto encoded = codec.encode(kTexts, o);
  ASSERT_EQ(encoded.size(), kTexts.size());
  for (size_t i = 0; i < kTexts.size(); ++i) {
    const auto spans = cut_spans(kTexts[i], codec.tokenizer(), o.max_span_tokens);
    ASSERT_EQ(encoded[i].spans.size(), spans.size()) << "text " << i;
    ASSERT_EQ(encoded[i].latents.sizes(), (std::vector<int64_t>{static_cast<int64_t>(spans.size()), 3, 96}));
    for (size_t s = 0; s < spans.size(); ++s) {
      EXPECT_EQ(encoded[i].spans[s].ids, spans[s].ids);
      EXPECT_EQ(encoded[i].spans[s].joiner, spans[s].joiner);
      const at::Tensor alone = codec.compress({&spans[s].ids})[0];
      EXPECT_TRUE(at::allclose(encoded[i].latents[static_cast<int64_t>(s)], alone, 1e-5, 1e-6))
          << "text " << i << " span " << s << ": batching changed its latents";
    }
  }
  EXPECT_GT(encoded[0].spans.size(), 1u) << "the test needs a text cut into spans";
}

TEST(Codec, DecodeJoinsEachSpansReconstructionWithTheWhitespaceAtItsCut) {
  C3Codec codec = tiny_codec();
  const CodecOptions o = small_batches();
  const auto encoded = codec.encode(kTexts, o);
  const auto decoded = codec.decode(encoded, o);
  ASSERT_EQ(decoded.size(), kTexts.size());
  for (size_t i = 0; i < kTexts.size(); ++i) {
    std::string want;
    for (int64_t s = 0; s < encoded[i].latents.size(0); ++s)
      want += codec.reconstruct(encoded[i].latents.narrow(0, s, 1), o.generate)[0] +
              encoded[i].spans[static_cast<size_t>(s)].joiner;
    EXPECT_EQ(decoded[i], want) << "text " << i;
  }
  EXPECT_EQ(decoded[2].substr(decoded[2].size() - 2), "\n\n") << "the text's trailing whitespace comes back";
}

TEST(Codec, JoinSpansAndShortestFirst) {
  EXPECT_EQ(join_spans({"a", "b", ""}, {" \n", "\t", "\n"}), "a \nb\t\n");
  EXPECT_THROW(join_spans({"a"}, {}), Error);
  EXPECT_EQ(shortest_first({3, 1, 2, 1, 3}), (std::vector<size_t>{1, 3, 2, 0, 4})) << "ties keep their order";
}

TEST(Codec, UnusableTextsAndForeignLatentsAreErrorsThatNameTheText) {
  C3Codec codec = tiny_codec();
  try {
    codec.encode({"fine", " \n "});
    FAIL() << "an empty text was encoded";
  } catch (const Error& e) {
    EXPECT_STREQ(e.what(), "text 1: empty (no text to compress)");
  }
  EXPECT_THROW(codec.encode({std::string("a\0b", 3)}), Error);
  auto encoded = codec.encode({"fine"});
  encoded[0].latents = at::zeros({1, 5, 96});
  try {
    codec.decode(encoded);
    FAIL() << "latents of another shape were decoded";
  } catch (const Error& e) {
    EXPECT_STREQ(e.what(), "text 0: latents are not [1 spans, 3, 96] for this model");
  }
  C3Prompt other(codec.tokenizer(), 5);
  EXPECT_THROW(C3Codec(codec.model(), byte_tokenizer(), other), Error) << "a prompt with 5 slots for a model with 3";
}

}  // namespace
}  // namespace c3
