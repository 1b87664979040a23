// The context utility of `c3 eval --task continue`, on numbers checked by hand.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>

#include "c3/eval/context_utility.h"

namespace c3 {
namespace {

TEST(ContextUtility, IsTheShareOfWhatTheTextGainsThatTheLatentsGain) {
  EXPECT_DOUBLE_EQ(context_utility(3.0, 2.0, 1.0), 0.5);
  EXPECT_DOUBLE_EQ(context_utility(3.0, 1.0, 1.0), 1.0) << "as good as the text";
  EXPECT_DOUBLE_EQ(context_utility(3.0, 3.0, 1.0), 0.0) << "no help";
  EXPECT_DOUBLE_EQ(context_utility(3.0, 4.0, 2.0), -1.0) << "worse than nothing";
  EXPECT_TRUE(std::isnan(context_utility(2.0, 1.0, 2.0))) << "undefined when the text does not help";
  EXPECT_TRUE(std::isnan(context_utility(2.0, 1.0, 2.5)));
}

// Three targets: span 1 of document a (reaches k = 1), spans 1 and 2 of document b (k = 1; k = 1, 2).
TEST(ContextUtility, RowsAverageOverTheTokensOfTheTargetsThatReachK) {
  std::vector<TargetLosses> targets(3);
  targets[0] = {"a", 1, 10, 40.0, {{1, {30.0, 20.0}}}};
  targets[1] = {"b", 1, 5, 20.0, {{1, {20.0, 10.0}}}};
  targets[2] = {"b", 2, 5, 25.0, {{1, {15.0, 10.0}}, {2, {10.0, 5.0}}}};
  const auto rows = utility_rows(targets, {1, 2, 4});
  ASSERT_EQ(rows.size(), 2u) << "no target has 4 spans before it";
  // k = 1: 20 tokens; none (40 + 20 + 25) / 20 = 4.25, latents 65 / 20 = 3.25, text 40 / 20 = 2.
  EXPECT_EQ(rows[0].spans_back, 1);
  EXPECT_EQ(rows[0].targets, 3);
  EXPECT_EQ(rows[0].tokens, 20);
  EXPECT_DOUBLE_EQ(rows[0].loss_none, 4.25);
  EXPECT_DOUBLE_EQ(rows[0].loss_latents, 3.25);
  EXPECT_DOUBLE_EQ(rows[0].loss_text, 2.0);
  EXPECT_DOUBLE_EQ(rows[0].utility, 1.0 / 2.25);
  // k = 2: the last target alone; none 5, latents 2, text 1.
  EXPECT_EQ(rows[1].targets, 1);
  EXPECT_DOUBLE_EQ(rows[1].utility, 0.75);
  EXPECT_TRUE(rows[1].to_json()["utility"].is_number());
  const UtilityRow undefined{1, 1, 1, 1.0, 1.0, 2.0, std::nan("")};
  EXPECT_TRUE(undefined.to_json()["utility"].is_null());
}

}  // namespace
}  // namespace c3
