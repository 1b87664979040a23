// Cutting long texts into spans (compress, eval): the spans hold every token once, in order, and
// their byte ranges tile the text, with both tokenizer families (a sentencepiece tokenizer decodes a
// span without the space that starts it).
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cctype>

#include "c3/infer/codec.h"
#include "c3/tokenizer/tokenizer.h"
#include "test_support.h"

namespace c3 {
namespace {

void expect_spans_tile(const Tokenizer& tokenizer, const std::string& text, int64_t max_tokens) {
  const auto ids = tokenizer.encode_text(text);
  const auto spans = cut_spans(text, tokenizer, max_tokens);
  std::vector<int32_t> joined;
  int64_t offset = 0;
  for (const auto& span : spans) {
    EXPECT_LE(static_cast<int64_t>(span.ids.size()), max_tokens);
    EXPECT_EQ(span.begin, offset) << "contiguous";
    offset = span.end;
    joined.insert(joined.end(), span.ids.begin(), span.ids.end());
  }
  EXPECT_EQ(offset, static_cast<int64_t>(text.size())) << "the last span ends the text";
  EXPECT_EQ(joined, ids) << "every token once, in order";
  // A cut moves back only to a word boundary in the span's last quarter, or out of a multi-byte
  // character by a token or two: never to tiny spans.
  const int64_t shortest = max_tokens - max_tokens / 4 - 2;
  EXPECT_LE(static_cast<int64_t>(spans.size()), (static_cast<int64_t>(ids.size()) + shortest - 1) / shortest + 1)
      << spans.size() << " spans for " << ids.size() << " tokens";
}

// Where a span ends: between words (the text's byte there, or the one before, is whitespace).
std::vector<std::string> cuts_inside_words(const std::string& text, const std::vector<Span>& spans) {
  std::vector<std::string> inside;
  auto space = [&](int64_t at) { return at >= 0 && std::isspace(static_cast<unsigned char>(text[at])); };
  for (size_t i = 0; i + 1 < spans.size(); ++i)
    if (!space(spans[i].end) && !space(spans[i].end - 1)) inside.push_back(text.substr(spans[i].end - 8, 16));
  return inside;
}

TEST(CutSpans, TileTheTextWithSentencepieceAndByteLevelBpe) {
  const std::string text =
      "The floppy driver is configured using the floppy option in lilo. This option can be typed at the boot "
      "prompt, or entered in the lilo configuration file.\n\nSeveral floppy related options may be given, for "
      "example: Zürich, naïve café, 東京 and more words after them.  Two spaces, then a tab\there.";
  test::TempDir dir;
  test::train_test_tokenizer(test::random_texts(300, 12, 9), dir / "spm", 400);
  const auto spm = load_tokenizer(dir / "spm");
  const auto bpe = load_tokenizer(std::filesystem::path(C3_TEST_DATA) / "qwen2-tokenizer");
  for (const Tokenizer* tokenizer : std::vector<const Tokenizer*>{spm.get(), bpe.get()})
    for (int64_t max_tokens : {5, 8, 13, 1000}) expect_spans_tile(*tokenizer, text, max_tokens);
}

TEST(CutSpans, SpansEndBetweenWordsWhenABoundaryIsNear) {
  std::string text;
  for (const auto& t : test::random_texts(20, 15, 4)) text += t + (text.size() % 3 ? "\n" : " ");
  test::TempDir dir;
  test::train_test_tokenizer(test::random_texts(300, 12, 9), dir / "spm", 400);
  const auto spm = load_tokenizer(dir / "spm");
  const auto bpe = load_tokenizer(std::filesystem::path(C3_TEST_DATA) / "qwen2-tokenizer");
  for (const Tokenizer* tokenizer : std::vector<const Tokenizer*>{spm.get(), bpe.get()})
    for (int64_t max_tokens : {32, 100}) {  // (random words take up to 6 tokens each here)
      const auto spans = cut_spans(text, *tokenizer, max_tokens);
      ASSERT_GT(spans.size(), 2u);
      EXPECT_THAT(cuts_inside_words(text, spans), testing::IsEmpty()) << tokenizer->kind() << ", " << max_tokens;
    }
  // One long word has no boundary to move to: the span is cut at the limit.
  const std::string word(400, 'x');
  const auto spans = cut_spans(word, *bpe, 16);
  for (size_t i = 0; i + 1 < spans.size(); ++i) EXPECT_EQ(spans[i].ids.size(), 16u);
}

}  // namespace
}  // namespace c3
