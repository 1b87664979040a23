// The Fox scorer, worked by hand: each case below was computed on paper from the definitions
// in fox_metrics.h (NLTK's, with the official script's argument order).
#include "c3/eval/fox_metrics.h"

#include <gtest/gtest.h>

#include <cfloat>
#include <cmath>
#include <random>

#include "c3/tokenizer/unicode.h"

namespace c3 {
namespace {

TEST(FoxMetrics, IdenticalTextsScorePerfectly) {
  const auto s = score_page("the cat sat on the mat", "the cat sat on the mat");
  EXPECT_EQ(s.precision, 1.0);
  EXPECT_EQ(s.recall, 1.0);
  EXPECT_EQ(s.f1, 1.0);
  EXPECT_EQ(s.bleu, 1.0);  // every precision 1, lengths equal: exp(1 - 6/6) = 1
  EXPECT_EQ(s.edit_distance, 0.0);
  EXPECT_TRUE(s.exact_match);
  EXPECT_EQ(s.reference_words, 6);
}

TEST(FoxMetrics, AWorkedExampleFollowsTheSwappedArguments) {
  // GT "a b c d e", output "a b c d x y". GT words {a..e}; 4 of its 5 are in the output.
  const auto s = score_page("a b c d e", "a b c d x y");
  EXPECT_DOUBLE_EQ(s.precision, 4.0 / 5.0) << "shares of GT words reproduced";
  EXPECT_DOUBLE_EQ(s.recall, 4.0 / 6.0) << "shares of output words in the GT";
  EXPECT_DOUBLE_EQ(s.f1, 1.0 / (0.5 / 0.8 + 0.5 / (4.0 / 6.0)));
  // BLEU with the GT as hypothesis: p1 = 4/5 (a b c d), p2 = 3/4 (ab bc cd), p3 = 2/3, p4 = 1/2;
  // the GT (5 words) is shorter than the output (6): brevity penalty exp(1 - 6/5).
  const double expected = std::exp(-0.2) * std::exp(0.25 * std::log(0.8) + 0.25 * std::log(0.75) +
                                                    0.25 * std::log(2.0 / 3.0) + 0.25 * std::log(0.5));
  EXPECT_NEAR(s.bleu, expected, 1e-15);
  EXPECT_NEAR(s.bleu, 0.5475182535069453, 1e-15);  // exp(-0.2) * 0.2^(1/4)
  // Characters: "a b c d e" -> "a b c d x y" is e->x plus " y": 3 edits over the longer 11.
  EXPECT_DOUBLE_EQ(s.edit_distance, 3.0 / 11.0);
  EXPECT_FALSE(s.exact_match);
  // Swapping the sides swaps precision and recall: the order matters and is the script's.
  const auto t = score_page("a b c d x y", "a b c d e");
  EXPECT_DOUBLE_EQ(t.precision, s.recall);
  EXPECT_DOUBLE_EQ(t.recall, s.precision);
  EXPECT_NE(t.bleu, s.bleu);
}

TEST(FoxMetrics, RepeatedWordsCountOnceInSetsAndAreClippedInBleu) {
  const auto s = score_page("the the the the", "the");
  EXPECT_EQ(s.precision, 1.0);
  EXPECT_EQ(s.recall, 1.0);
  EXPECT_EQ(s.f1, 1.0);
  // p1 = min(4, 1) / 4; no bigram, trigram or 4-gram matches: NLTK's method0 puts DBL_MIN there,
  // which leaves a tiny positive score rather than 0; the GT is longer, so no brevity penalty.
  const double expected = std::exp(0.25 * std::log(0.25) + 0.75 * std::log(DBL_MIN));
  EXPECT_GT(s.bleu, 0.0);
  EXPECT_NEAR(s.bleu / expected, 1.0, 1e-12);
  EXPECT_DOUBLE_EQ(s.edit_distance, 12.0 / 15.0);
}

TEST(FoxMetrics, EmptySidesHaveDocumentedScores) {
  const auto no_output = score_page("hello world", "");
  EXPECT_EQ(no_output.precision, 0.0);
  EXPECT_EQ(no_output.recall, 0.0);
  EXPECT_EQ(no_output.f1, 0.0);
  EXPECT_EQ(no_output.bleu, 0.0);
  EXPECT_EQ(no_output.edit_distance, 1.0);
  const auto no_truth = score_page("", "hello");
  EXPECT_EQ(no_truth.precision, 0.0);
  EXPECT_EQ(no_truth.recall, 0.0);
  EXPECT_EQ(no_truth.bleu, 0.0);
  EXPECT_EQ(no_truth.edit_distance, 1.0);
  const auto both = score_page("", "  \n");
  EXPECT_EQ(both.precision, 1.0);
  EXPECT_EQ(both.recall, 1.0);
  EXPECT_EQ(both.f1, 1.0);
  EXPECT_EQ(both.bleu, 0.0) << "NLTK's value for an empty hypothesis";
  EXPECT_DOUBLE_EQ(both.edit_distance, 1.0) << "3 characters against none";
  EXPECT_EQ(score_page("", "").edit_distance, 0.0);
  EXPECT_FALSE(both.exact_match);
}

TEST(FoxMetrics, WordsAreSplitAsPythonSplits) {
  EXPECT_EQ(split_words("  a\tb\n\nc  "), (std::vector<std::string>{"a", "b", "c"}));
  // No-break space, ideographic space, line separator and U+001F are whitespace to Python...
  EXPECT_EQ(split_words("a\u00a0b\u3000c\u2028d\x1f" "e").size(), 5u);
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
