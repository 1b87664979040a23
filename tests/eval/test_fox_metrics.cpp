// The Fox scorer's own parts: Python's word split, the Chinese stand-in, the exact sum, the
// bit-parallel edit distance, page means. The metric values themselves are checked against NLTK,
// computed as Fox's official script does, in tests/hf/test_fox_scorer.py.
#include "c3/eval/fox_metrics.h"

#include <gtest/gtest.h>

#include <random>

#include "c3/tokenizer/unicode.h"

namespace c3 {
namespace {

TEST(FoxMetrics, WordsAreSplitAsPythonSplits) {
  EXPECT_EQ(split_words("  a\tb\n\nc  "), (std::vector<std::string>{"a", "b", "c"}));
  // No-break space, ideographic space, line separator and U+001F are whitespace to Python...
  EXPECT_EQ(split_words("a\u00a0b\u3000c\u2028d\x1f"
                        "e")
                .size(),
            5u);
  // ...a zero-width space is not.
  EXPECT_EQ(split_words("a\u200bb").size(), 1u);
  EXPECT_TRUE(split_words("").empty());
}

TEST(FoxMetrics, ChinesePagesAreSegmentedPerCharacterAndFlagged) {
  EXPECT_TRUE(has_chinese("abc \u4e2d"));
  EXPECT_FALSE(has_chinese("abc \u3042"));  // hiragana is outside the script's range
  EXPECT_EQ(split_words_and_chinese_characters("我爱北京 ok天"),
            (std::vector<std::string>{"我", "爱", "北", "京", "ok", "天"}));
  const auto s = score_page("我爱北京", "我爱上海");
  EXPECT_TRUE(s.chinese);
  EXPECT_DOUBLE_EQ(s.precision, 0.5);
  EXPECT_FALSE(score_page("a b", "a b").chinese);
}

TEST(FoxMetrics, ExactSumRoundsLikeMathFsum) {
  EXPECT_EQ(exact_sum(std::vector<double>(10, 0.1)), 1.0);  // a naive sum gives 0.9999999999999999
  EXPECT_EQ(exact_sum({1e100, 1.0, -1e100}), 1.0);
  EXPECT_EQ(exact_sum({}), 0.0);
}

TEST(FoxMetrics, BitParallelLevenshteinEqualsTheTable) {
  EXPECT_EQ(levenshtein(U"kitten", U"sitting"), 3);
  EXPECT_EQ(levenshtein(U"flaw", U"lawn"), 2);
  EXPECT_EQ(levenshtein(U"", U"abc"), 3);
  EXPECT_EQ(levenshtein(U"ab", U"ba"), 2) << "no transpositions";
  std::mt19937 rng(7);
  const std::u32string alphabet = U"ab\u00e9\u4e2d ";
  for (int trial = 0; trial < 300; ++trial) {
    const size_t lengths[] = {0, 1, 5, 63, 64, 65, 127, 128, 129, 200};
    std::u32string a, b;
    const size_t la = lengths[rng() % 10], lb = lengths[rng() % 10] + rng() % 3;
    const size_t letters = 2 + rng() % 4;
    for (size_t i = 0; i < la; ++i) a += alphabet[rng() % letters];
    for (size_t i = 0; i < lb; ++i) b += alphabet[rng() % letters];
    ASSERT_EQ(levenshtein(a, b), levenshtein_table(a, b)) << la << " x " << lb;
  }
}

TEST(FoxMetrics, MeansAreOverPages) {
  ScoreMeans means;
  means.add(score_page("a b", "a b"));
  means.add(score_page("a b", "a"));
  const auto j = means.to_json();
  EXPECT_EQ(j["pages"], 2);
  EXPECT_DOUBLE_EQ(j["precision"].get<double>(), 0.75);
  EXPECT_DOUBLE_EQ(j["exact_match"].get<double>(), 0.5);
  EXPECT_DOUBLE_EQ(j["one_minus_edit_distance"].get<double>(), 1.0 - (0.0 + 2.0 / 3.0) / 2.0);
}

}  // namespace
}  // namespace c3
