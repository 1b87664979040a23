// Data: the three input formats, their errors, cutting and packing, validation split, sampling.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <set>

#include "c3/data/dataset.h"
#include "c3/util/error.h"
#include "test_support.h"

namespace c3 {
namespace {

namespace fs = std::filesystem;
using testing::HasSubstr;

const test::ByteTokenizer kTokenizer;  // one token per byte: token counts are byte counts

std::string error_of(const std::function<void()>& f) { return test::error_of<Error>(f); }

TEST(Documents, ReadsJsonlConversationsAndTextFolders) {
  test::TempDir dir;
  test::write_bytes(dir / "a.jsonl", "{\"text\": \"first\"}\n\n{\"text\": \"second\", \"id\": 2}\n");
  auto docs = read_documents(dir / "a.jsonl");
  ASSERT_EQ(docs.size(), 2u);
  EXPECT_EQ(docs[1].text, "second");
  EXPECT_THAT(docs[1].origin, HasSubstr("a.jsonl:3"));
  test::write_bytes(
      dir / "conv.json",
      R"([{"conversations": [{"from": "context", "value": "THE TEXT"}, {"from": "human", "value": "<image>\nRepeat the text: "}, {"from": "gpt", "value": "THE TEXT"}]}])");
  docs = read_documents(dir / "conv.json");
  ASSERT_EQ(docs.size(), 1u);
  EXPECT_EQ(docs[0].text, "THE TEXT");
  fs::create_directories(dir / "txt" / "sub");
  test::write_bytes(dir / "txt" / "b.txt", "bee\n");
  test::write_bytes(dir / "txt" / "sub" / "a.txt", "ay");
  test::write_bytes(dir / "txt" / "c.md", "see");  // the text files compress takes
  test::write_bytes(dir / "txt" / "skip.json", "{}");
  docs = read_documents(dir / "txt");
  ASSERT_EQ(docs.size(), 3u);
  EXPECT_EQ(docs[0].text, "bee\n");
  EXPECT_EQ(docs[1].text, "see");
  EXPECT_EQ(docs[2].text, "ay");
}

TEST(Documents, BadInputNamesTheFileAndLine) {
  test::TempDir dir;
  test::write_bytes(dir / "bad.jsonl", "{\"text\": \"ok\"}\n{\"text\": oops}\n");
  EXPECT_THAT(error_of([&] { read_documents(dir / "bad.jsonl"); }), HasSubstr("bad.jsonl:2: not valid JSON"));
  test::write_bytes(dir / "field.jsonl", "{\"body\": \"x\"}\n");
  EXPECT_THAT(error_of([&] { read_documents(dir / "field.jsonl"); }), HasSubstr("field.jsonl:1: expected an object"));
  test::write_bytes(dir / "conv.json", R"([{"conversations": [{"from": "human", "value": "x"}]}])");
  EXPECT_THAT(error_of([&] { read_documents(dir / "conv.json"); }), HasSubstr("conv.json#0"));
  EXPECT_THAT(error_of([&] { read_documents(dir / "missing.jsonl"); }), HasSubstr("missing.jsonl: no such file"));
  test::write_bytes(dir / "data.csv", "a,b");
  EXPECT_THAT(error_of([&] { read_documents(dir / "data.csv"); }), HasSubstr("unknown data format"));
  fs::create_directories(dir / "empty");
  EXPECT_THAT(error_of([&] { read_documents(dir / "empty"); }), HasSubstr("folder has no text files"));
}

TEST(Samples, LongDocumentsAreCutLosslesslyIntoTheTargetRange) {
  std::string text;
  for (const auto& line : test::random_texts(60, 9, 1)) text += line + "\n";  // ~60 lines of ~45 bytes
  SampleOptions o;
  o.min_tokens = 100, o.max_tokens = 200, o.seed = 3;
  const auto samples = make_samples({{text, "doc"}}, kTokenizer, o);
  ASSERT_GT(samples.size(), 8u);
  std::string joined;
  for (size_t i = 0; i < samples.size(); ++i) {
    joined += samples[i].text;
    EXPECT_LE(samples[i].ids.size(), 200u);
    if (i + 1 < samples.size()) {
      EXPECT_GE(samples[i].ids.size(), 100u - 50u) << "pieces end at a line near the target";
    }
    EXPECT_EQ(samples[i].ids, kTokenizer.encode_text(samples[i].text));
  }
  EXPECT_EQ(joined, text) << "cuts fall between lines; nothing is lost or duplicated";
  EXPECT_EQ(make_samples({{text, "doc"}}, kTokenizer, o)[3].text, samples[3].text) << "seeded";
}

TEST(Samples, SpecialTokenStringsInDocumentsAreText) {
  // The test tokenizer's special tokens are ids 0-5; as document text they must be bytes.
  for (const char* s : {"<img>", "<imgpad>", "</img>", "<|im_end|>"}) {
    const std::string text = std::string("before ") + s + " after";
    const auto samples = make_samples({{text, "doc"}}, kTokenizer, {});
    ASSERT_EQ(samples.size(), 1u) << s;
    EXPECT_EQ(samples[0].ids.size(), text.size()) << s << ": one id per byte";
    EXPECT_TRUE(std::all_of(samples[0].ids.begin(), samples[0].ids.end(), [](int32_t id) { return id >= 6; })) << s;
  }
}

TEST(Samples, ALineLongerThanTheRangeIsCutAtWords) {
  const std::string line = test::random_texts(1, 80, 2)[0];  // one ~380-byte line
  SampleOptions o;
  o.min_tokens = 50, o.max_tokens = 100;
  const auto samples = make_samples({{line, "doc"}}, kTokenizer, o);
  std::string joined;
  for (const auto& s : samples) {
    joined += s.text;
    EXPECT_LE(s.ids.size(), 100u);
  }
  EXPECT_EQ(joined, line);
}

TEST(Samples, ShortDocumentsArePackedWhenAsked) {
  std::vector<Document> docs;
  for (const auto& t : test::random_texts(10, 3, 4)) docs.push_back({t, "d"});
  SampleOptions o;
  o.min_tokens = 40, o.max_tokens = 80;
  EXPECT_EQ(make_samples(docs, kTokenizer, o).size(), 10u) << "kept as they are by default";
  o.pack_short = true;
  const auto packed = make_samples(docs, kTokenizer, o);
  EXPECT_LT(packed.size(), 6u);
  for (size_t i = 0; i + 1 < packed.size(); ++i) {
    EXPECT_GE(packed[i].ids.size(), 40u);
    EXPECT_LE(packed[i].ids.size(), 80u);
  }
  EXPECT_THAT(packed[0].text, HasSubstr(docs[0].text + "\n\n" + docs[1].text));
}

TEST(Samples, TooLongForTheWindowIsAnErrorUnlessSplitting) {
  const std::string text(300, 'x');
  SampleOptions o;
  o.min_tokens = 10, o.max_tokens = 1000, o.limit_tokens = 120, o.split_long = false;
  EXPECT_THAT(error_of([&] {
                make_samples({{text, "big.jsonl:7"}}, kTokenizer, o);
              }),
              HasSubstr("big.jsonl:7: sample has 300 tokens, more than the 120"));
  o.split_long = true;
  EXPECT_THROW(make_samples({{text, "d"}}, kTokenizer, o), UsageError) << "max_tokens over the window";
  o.max_tokens = 100;
  const auto samples = make_samples({{text, "d"}}, kTokenizer, o);
  ASSERT_EQ(samples.size(), 3u);
  o.min_tokens = 0;
  EXPECT_THROW(make_samples({{text, "d"}}, kTokenizer, o), UsageError);
}

TEST(Samples, ValidationSplitIsSeededAndDisjoint) {
  std::vector<Sample> samples;
  for (int i = 0; i < 20; ++i) samples.push_back({std::to_string(i), {i}, "d"});
  auto train = samples;
  const auto valid = split_validation(train, 5, 7);
  ASSERT_EQ(valid.size(), 5u);
  ASSERT_EQ(train.size(), 15u);
  std::set<std::string> seen;
  for (const auto& s : train) seen.insert(s.text);
  for (const auto& s : valid) {
    EXPECT_EQ(seen.count(s.text), 0u);
    seen.insert(s.text);
  }
  EXPECT_EQ(seen.size(), 20u);
  auto again = samples;
  EXPECT_EQ(split_validation(again, 5, 7)[2].text, valid[2].text);
  auto small = samples;
  EXPECT_THROW(split_validation(small, 20, 7), UsageError);
}

TEST(InstructRecords, ReadJsonlAndTheAuthorsConversations) {
  test::TempDir dir;
  test::write_bytes(dir / "qa.jsonl",
                    "{\"context\": \"Ann met Bob.\", \"instruction\": \"Who met Bob? \", \"answer\": \"Ann\"}\n\n");
  auto records = read_instruct_records(dir / "qa.jsonl");
  ASSERT_EQ(records.size(), 1u);
  EXPECT_EQ(records[0].instruction, "Who met Bob? ");
  EXPECT_EQ(records[0].answer, "Ann");
  EXPECT_THAT(records[0].origin, HasSubstr("qa.jsonl:1"));
  test::write_bytes(
      dir / "conv.json",
      R"([{"conversations": [{"from": "context", "value": "THE TEXT"}, {"from": "human", "value": "<image>\nWhat is it? "}, {"from": "gpt", "value": "text"}]}])");
  records = read_instruct_records(dir / "conv.json");
  ASSERT_EQ(records.size(), 1u);
  EXPECT_EQ(records[0].context, "THE TEXT");
  EXPECT_EQ(records[0].instruction, "What is it? ") << "the image marker is where the latents go";
  EXPECT_EQ(records[0].answer, "text");
  test::write_bytes(dir / "bad.jsonl", "{\"context\": \"c\", \"answer\": \"a\"}\n");
  EXPECT_THAT(error_of([&] { read_instruct_records(dir / "bad.jsonl"); }),
              HasSubstr("bad.jsonl:1: expected an object"));
  test::write_bytes(dir / "broken.jsonl", "{\"context\": \"c\", \"instruction\": \"i\", \"answer\": \"a\"}\n{oops\n");
  EXPECT_THAT(error_of([&] { read_instruct_records(dir / "broken.jsonl"); }),
              HasSubstr("broken.jsonl:2: not valid JSON"));
  test::write_bytes(dir / "half.json", R"([{"conversations": [{"from": "context", "value": "x"}]}])");
  EXPECT_THAT(error_of([&] { read_instruct_records(dir / "half.json"); }), HasSubstr("half.json#0"));
  EXPECT_THAT(error_of([&] { read_instruct_records(dir / "none.jsonl"); }), HasSubstr("no such file"));
}

TEST(Sampler, EpochsArePermutationsAndPositionsRestore) {
  Sampler s(10, 42);
  std::vector<int64_t> first;
  for (int i = 0; i < 5; ++i)
    for (int64_t x : s.next(2)) first.push_back(x);
  EXPECT_EQ(std::set<int64_t>(first.begin(), first.end()).size(), 10u) << "one epoch visits every sample once";
  std::vector<int64_t> second;
  for (int i = 0; i < 5; ++i)
    for (int64_t x : s.next(2)) second.push_back(x);
  EXPECT_NE(first, second) << "each epoch has its own order";
  Sampler restored(10, 42);
  restored.set_consumed(10);
  std::vector<int64_t> again;
  for (int i = 0; i < 5; ++i)
    for (int64_t x : restored.next(2)) again.push_back(x);
  EXPECT_EQ(again, second);
}

TEST(Sampler, RanksTakeDisjointSlicesOfTheSameStream) {
  Sampler single(12, 5), rank0(12, 5, 0, 2), rank1(12, 5, 1, 2);
  for (int step = 0; step < 6; ++step) {
    auto all = single.next(4), a = rank0.next(2), b = rank1.next(2);
    a.insert(a.end(), b.begin(), b.end());
    EXPECT_EQ(a, all);
  }
  EXPECT_EQ(rank0.consumed(), single.consumed());
}

}  // namespace
}  // namespace c3
