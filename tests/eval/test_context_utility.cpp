// The context utility of `c3 eval --task continue`, on numbers checked by hand.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <string>
#include <utility>

#include "c3/eval/context_utility.h"

namespace c3 {
namespace {

using Pairs = std::map<int64_t, std::pair<double, double>>;

TargetLosses target(const std::string& document, int64_t span, int64_t tokens, double none, Pairs by_k,
                    double precision_none = std::nan(""), Pairs precision_by_k = {}) {
  TargetLosses t;
  t.document = document, t.span = span, t.tokens = tokens, t.none = none, t.by_k = std::move(by_k);
  t.precision_none = precision_none, t.precision_by_k = std::move(precision_by_k);
  return t;
}

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
  targets[0] = target("a", 1, 10, 40.0, {{1, {30.0, 20.0}}});
  targets[1] = target("b", 1, 5, 20.0, {{1, {20.0, 10.0}}});
  targets[2] = target("b", 2, 5, 25.0, {{1, {15.0, 10.0}}, {2, {10.0, 5.0}}});
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

// Continuation precisions average over the targets that reach k, each target counting once; a
// target without them (losses only) leaves the means undefined.
TEST(ContextUtility, PrecisionsAverageOverTargetsAndSurviveTheJournal) {
  std::vector<TargetLosses> targets(2);
  targets[0] = target("a", 1, 10, 40.0, {{1, {30.0, 20.0}}}, 0.2, {{1, {0.4, 0.8}}});
  targets[0].document_sha256 = "sha-a";
  targets[1] = target("b", 2, 30, 20.0, {{1, {20.0, 10.0}}, {2, {10.0, 5.0}}}, 0.4, {{1, {0.6, 1.0}}, {2, {0.5, 0.9}}});
  auto rows = utility_rows(targets, {1, 2});
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_DOUBLE_EQ(rows[0].precision_none, 0.3);
  EXPECT_DOUBLE_EQ(rows[0].precision_latents, 0.5);
  EXPECT_DOUBLE_EQ(rows[0].precision_text, 0.9);
  EXPECT_DOUBLE_EQ(rows[1].precision_latents, 0.5);
  EXPECT_DOUBLE_EQ(rows[1].precision_none, 0.4);
  // What a journal line holds comes back whole.
  const TargetLosses back = TargetLosses::from_json(targets[0].to_json());
  EXPECT_EQ(back.to_json(), targets[0].to_json());
  EXPECT_EQ(back.document_sha256, "sha-a");
  EXPECT_DOUBLE_EQ(back.precision_by_k.at(1).second, 0.8);
  const TargetLosses losses_only = target("c", 1, 5, 10.0, {{1, {9.0, 8.0}}});
  EXPECT_TRUE(std::isnan(TargetLosses::from_json(losses_only.to_json()).precision_none));
  rows = utility_rows({losses_only}, {1});
  EXPECT_TRUE(std::isnan(rows[0].precision_latents));
  EXPECT_TRUE(rows[0].to_json()["precision_latents"].is_null());
}

// The control (another document's latents) gives the content utility, only when every target of
// k has it.
TEST(ContextUtility, ContentUtilityCountsWhatTheSpansOwnLatentsAddOverAnyLatents) {
  std::vector<TargetLosses> targets(2);
  targets[0] = target("a", 1, 10, 40.0, {{1, {30.0, 20.0}}});
  targets[0].other_by_k = {{1, 36.0}};
  targets[1] = target("b", 2, 10, 40.0, {{1, {30.0, 20.0}}, {2, {25.0, 20.0}}});
  targets[1].other_by_k = {{1, 34.0}};
  const auto rows = utility_rows(targets, {1, 2});
  // k = 1: none 4, latents 3, text 2, other (36 + 34) / 20 = 3.5: utility 0.5, content utility 0.25.
  EXPECT_DOUBLE_EQ(rows[0].utility, 0.5);
  EXPECT_DOUBLE_EQ(rows[0].loss_other, 3.5);
  EXPECT_DOUBLE_EQ(rows[0].content_utility, 0.25);
  EXPECT_TRUE(std::isnan(rows[1].loss_other)) << "target b has no control at k = 2";
  EXPECT_DOUBLE_EQ(TargetLosses::from_json(targets[1].to_json()).other_by_k.at(1), 34.0);
}

}  // namespace
}  // namespace c3
