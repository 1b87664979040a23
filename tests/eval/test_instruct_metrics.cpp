// SQuAD v1.1's answer normalisation, exact match and token F1, on cases checked by hand against
// its evaluate-v1.1.py.
#include <gtest/gtest.h>

#include "c3/eval/instruct_eval.h"

namespace c3 {
namespace {

TEST(SquadMetrics, NormalisationDropsCasePunctuationArticlesAndSpaces) {
  EXPECT_EQ(squad_normalize("The Cat, sat."), "cat sat");
  EXPECT_EQ(squad_normalize("An apple a day"), "apple day");
  EXPECT_EQ(squad_normalize("theater and anthem"), "theater and anthem") << "articles only as whole words";
  EXPECT_EQ(squad_normalize("  Hello,\t  world!  "), "hello world");
  EXPECT_EQ(squad_normalize("the-end"), "theend") << "punctuation goes first, as in the script";
  EXPECT_EQ(squad_normalize("a a a"), "");
  EXPECT_EQ(squad_normalize("Zürich the"), "zürich") << "non-ASCII letters kept as they are";
}

TEST(SquadMetrics, ExactMatchAndTokenF1) {
  EXPECT_TRUE(squad_exact_match("The Cat.", "cat"));
  EXPECT_FALSE(squad_exact_match("cats", "cat"));
  EXPECT_DOUBLE_EQ(squad_f1("the cat sat", "cat sat on mat"), 2.0 / 3.0);  // P 1, R 1/2
  EXPECT_DOUBLE_EQ(squad_f1("x y y", "y"), 0.5);                           // one common token: P 1/3, R 1
  EXPECT_DOUBLE_EQ(squad_f1("y y", "y y z"), 0.8);                         // P 1, R 2/3
  EXPECT_DOUBLE_EQ(squad_f1("nothing", "else"), 0.0);
  EXPECT_DOUBLE_EQ(squad_f1("", "cat"), 0.0);
}

}  // namespace
}  // namespace c3
