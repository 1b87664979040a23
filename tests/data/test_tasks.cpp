// Training tasks: the weights of data.tasks, continuation examples cut from documents, and the
// seeded task mixture (its frequencies, ranks, resume, and equality with Sampler for one task).
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <set>

#include "c3/data/tasks.h"
#include "c3/util/error.h"
#include "test_support.h"

namespace c3 {
namespace {

using testing::HasSubstr;

const test::ByteTokenizer kTokenizer;

TEST(TaskWeights, AreNormalisedAndBadOnesNamed) {
  const auto w = task_weights({{"reconstruct", 3}, {"continue", 1}});
  EXPECT_DOUBLE_EQ(w[static_cast<size_t>(Task::reconstruct)], 0.75);
  EXPECT_DOUBLE_EQ(w[static_cast<size_t>(Task::continuation)], 0.25);
  EXPECT_THAT(test::error_of<UsageError>([] {
                task_weights({{"summarise", 1}});
              }),
              HasSubstr("unknown task 'summarise'"));
  EXPECT_THAT(test::error_of<UsageError>([] { task_weights({{"continue", -1}}); }), HasSubstr("continue"));
  EXPECT_THROW(task_weights({{"reconstruct", 0}}), UsageError);
}

// Three documents: a long one cut into pieces, a short one (one piece), another long one.
std::vector<Sample> three_documents() {
  std::string a, c;
  for (const auto& line : test::random_texts(30, 8, 1)) a += line + "\n";
  for (const auto& line : test::random_texts(20, 8, 2)) c += line + "\n";
  SampleOptions o;
  o.min_tokens = 60, o.max_tokens = 120, o.seed = 3;
  return make_samples({{a, "a"}, {"short one", "b"}, {c, "c"}}, kTokenizer, o);
}

TEST(Continuation, ExamplesAreConsecutivePiecesOfOneDocument) {
  const auto samples = three_documents();
  std::map<int64_t, int64_t> pieces;  // per document
  for (const auto& s : samples) ++pieces[s.document];
  ASSERT_EQ(pieces.size(), 3u);
  ASSERT_GT(pieces[0], 4);
  ASSERT_EQ(pieces[1], 1);
  const auto examples = continuation_examples(samples, 3, 7);
  EXPECT_EQ(static_cast<int64_t>(examples.size()), pieces[0] - 1 + pieces[2] - 1) << "every piece after a first";
  std::set<size_t> lengths;
  for (const auto& e : examples) {
    ASSERT_GE(e.context.size(), 1u);
    ASSERT_LE(e.context.size(), 3u);
    lengths.insert(e.context.size());
    const Sample& next = samples[e.next];
    for (size_t j = 0; j < e.context.size(); ++j) {
      const Sample& piece = samples[e.context[j]];
      EXPECT_EQ(piece.document, next.document);
      EXPECT_EQ(piece.piece, next.piece - static_cast<int64_t>(e.context.size() - j)) << "in order, right before";
    }
  }
  EXPECT_EQ(lengths, (std::set<size_t>{1, 2, 3})) << "every context length is drawn";
  EXPECT_EQ(continuation_examples(samples, 3, 7)[5].context, examples[5].context) << "seeded";
  for (const auto& e : continuation_examples(samples, 1, 7)) EXPECT_EQ(e.context.size(), 1u);
  EXPECT_THROW(continuation_examples(samples, 0, 7), UsageError);
}

TEST(Continuation, APieceTakenOutBreaksTheChain) {
  auto samples = three_documents();
  samples.erase(samples.begin() + 2);  // as split_validation may take it
  ASSERT_EQ(samples[2].piece, 3);
  for (const auto& e : continuation_examples(samples, 4, 1)) {
    EXPECT_NE(e.next, 2) << "piece 3 does not follow piece 1";
    const int64_t first = e.context.front();
    EXPECT_EQ(samples[e.next].piece - samples[first].piece, static_cast<int64_t>(e.context.size()))
        << "no context reaches across the gap";
  }
  SampleOptions o;
  o.min_tokens = 40, o.max_tokens = 80, o.pack_short = true;
  std::vector<Document> shorts;
  for (const auto& t : test::random_texts(10, 3, 4)) shorts.push_back({t, "d"});
  EXPECT_TRUE(continuation_examples(make_samples(shorts, kTokenizer, o), 2, 1).empty())
      << "packs of short documents are not one text";
}

TEST(TaskSampler, OneTaskIsExactlySampler) {
  TaskSampler mixed({10, 0}, {1, 0}, 42);
  Sampler plain(10, 42);
  for (int step = 0; step < 12; ++step) {
    const auto picks = mixed.next(3);
    const auto indices = plain.next(3);
    ASSERT_EQ(picks.size(), indices.size());
    for (size_t i = 0; i < picks.size(); ++i) {
      EXPECT_EQ(picks[i].first, Task::reconstruct);
      EXPECT_EQ(picks[i].second, indices[i]);
    }
  }
}

TEST(TaskSampler, DrawsTasksByWeightAndVisitsEachTasksExamples) {
  TaskSampler s({50, 20}, {0.7, 0.3}, 9);
  std::map<Task, std::vector<int64_t>> seen;
  const int draws = 20000;
  for (int i = 0; i < draws / 10; ++i)
    for (const auto& [task, index] : s.next(10)) seen[task].push_back(index);
  EXPECT_NEAR(static_cast<double>(seen[Task::continuation].size()) / draws, 0.3, 0.015);
  // The first 20 continuation draws are one epoch of its 20 examples.
  const std::set<int64_t> first(seen[Task::continuation].begin(), seen[Task::continuation].begin() + 20);
  EXPECT_EQ(first.size(), 20u);
  EXPECT_EQ(*first.rbegin(), 19);
  EXPECT_THAT(test::error_of<UsageError>([] { TaskSampler({5, 0}, {0.5, 0.5}, 1); }), HasSubstr("no continue example"));
}

TEST(TaskSampler, RanksSliceOneStreamAndAPositionRestoresIt) {
  TaskSampler single({12, 7}, {0.5, 0.5}, 5), rank0({12, 7}, {0.5, 0.5}, 5, 0, 2), rank1({12, 7}, {0.5, 0.5}, 5, 1, 2);
  for (int step = 0; step < 6; ++step) {
    auto all = single.next(4), a = rank0.next(2), b = rank1.next(2);
    a.insert(a.end(), b.begin(), b.end());
    EXPECT_EQ(a, all);
  }
  TaskSampler restored({12, 7}, {0.5, 0.5}, 5);
  restored.set_consumed(single.consumed());
  for (int step = 0; step < 5; ++step) EXPECT_EQ(restored.next(3), single.next(3));
}

}  // namespace
}  // namespace c3
