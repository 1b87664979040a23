#include <gtest/gtest.h>

#include "c3/tokenizer/sentencepiece.h"
#include "c3/util/error.h"
#include "test_support.h"

namespace c3 {
namespace {

std::string corpus() {
  std::string text;
  const char* lines[] = {"The quick brown fox jumps over the lazy dog.",
                         "Context cascade compression reads a text and leaves latent vectors behind.",
                         "A decoder reconstructs the text from a few dozen latent tokens.",
                         "Numbers like 1234 and 56.78 appear in tables, figures and references.",
                         "Researchers compare precision at twenty and forty times compression."};
  for (int rep = 0; rep < 40; ++rep)
    for (const char* l : lines) text += std::string(l) + " " + std::to_string(rep) + "\n";
  return text;
}

TEST(SentencePiece, TrainsWithTheC3SpecialTokensAndRoundTrips) {
  for (const char* type : {"bpe", "unigram"}) {
    test::TempDir dir;
    test::write_bytes(dir / "corpus.txt", corpus());
    SentencePieceTrainOptions o;
    o.inputs = {dir / "corpus.txt"};
    o.vocab_size = std::string(type) == "bpe" ? 400 : 340;
    o.model_type = type;
    train_sentencepiece(o, dir / "tok");
    auto tok = load_tokenizer(dir / "tok");
    EXPECT_EQ(tok->kind(), "sentencepiece");
    EXPECT_EQ(tok->vocab_size(), o.vocab_size);
    for (const auto& s : c3_special_tokens()) EXPECT_TRUE(tok->token_id(s).has_value()) << s;
    const std::string prompt = "<|im_start|>user\n<img><imgpad><imgpad></img>\nRepeat the text: <|im_end|>";
    const auto ids = tok->encode(prompt);
    EXPECT_EQ(std::count(ids.begin(), ids.end(), *tok->token_id("<imgpad>")), 2) << type;
    EXPECT_EQ(tok->decode(ids), prompt) << type;
    EXPECT_EQ(tok->decode(tok->encode("unseen ✓ 字")), "unseen ✓ 字") << "byte fallback, " << type;
    const std::string spaced = "two  spaces\n\nand\ttabs \n";
    EXPECT_EQ(tok->decode(tok->encode(spaced)), spaced) << "whitespace kept, " << type;
    EXPECT_EQ(tok->decode(ids, /*skip_special=*/true).find("<imgpad>"), std::string::npos);
    // As a document reads it, no special-token string becomes its token, and the text comes back.
    const auto plain = tok->encode_text(prompt);
    for (const auto& s : c3_special_tokens())
      EXPECT_EQ(std::count(plain.begin(), plain.end(), *tok->token_id(s)), 0) << s << ", " << type;
    EXPECT_EQ(tok->decode(plain), prompt) << type;
    EXPECT_THROW(tok->decode({100000}), Error);
    EXPECT_THROW(train_sentencepiece(o, dir / "tok"), Error) << "existing output is kept";
  }
}

}  // namespace
}  // namespace c3
