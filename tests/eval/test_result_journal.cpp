// The journal every eval mode resumes from: what it keeps of an interrupted run, what it redoes.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "c3/eval/eval_run.h"
#include "c3/eval/result_journal.h"
#include "c3/util/error.h"
#include "test_support.h"

namespace c3 {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

// Results {"id", "v"}: current while `ids` holds their id.
ResultJournal::StillCurrent ids_in(std::vector<std::string> ids) {
  return [ids](const json& r) { return std::find(ids.begin(), ids.end(), r.at("id").get<std::string>()) != ids.end(); };
}

std::vector<json> results(std::initializer_list<const char*> ids) {
  std::vector<json> out;
  for (const char* id : ids) out.push_back({{"id", id}, {"v", std::string(id) + "!"}});
  return out;
}

TEST(ResultJournal, KeepsTheCurrentResultsOfAnInterruptedRunUnderTheSameKey) {
  test::TempDir dir;
  const fs::path path = dir / "x.partial.jsonl";
  const json key{{"model", "m"}, {"n", 3}};
  {
    ResultJournal first(path, key, ids_in({"a", "b", "c"}), "results");
    EXPECT_TRUE(first.done().empty());
    first.append(results({"a", "b"}));
    first.append(results({"c"}));
    EXPECT_EQ(first.results(), 3u);
  }  // killed: the file stays
  EXPECT_TRUE(ResultJournal::written_by_c3(path));
  EXPECT_TRUE(written_by_eval(path));
  // The rerun: "b" left the selection; the others come back as they were written.
  ResultJournal again(path, key, ids_in({"a", "c"}), "results");
  ASSERT_EQ(again.done().size(), 2u);
  EXPECT_EQ(again.done()[0]["v"], "a!");
  EXPECT_EQ(again.done()[1]["id"], "c");
  // ... and the file now holds only them, then what is appended.
  again.append(results({"b"}));
  ResultJournal third(path, key, ids_in({"a", "b", "c"}), "results");
  ASSERT_EQ(third.done().size(), 3u);
  EXPECT_EQ(third.done()[2]["id"], "b");
  third.remove();
  EXPECT_FALSE(fs::exists(path));
}

TEST(ResultJournal, RedoesResultsOfOtherSettingsACutLineAndForeignShapes) {
  test::TempDir dir;
  const fs::path path = dir / "x.partial.jsonl";
  const json key{{"model", "m"}};
  const std::string header = json{{"resume_key", key}}.dump() + "\n";
  test::write_bytes(path, header + R"({"id":"a","v":1})" + "\n" + R"({"v":2})" + "\n" + R"({"id":"c","v")");
  {
    ResultJournal j(path, key, ids_in({"a", "c"}), "results");
    ASSERT_EQ(j.done().size(), 1u) << "the line without an id is redone, the cut line dropped";
    EXPECT_EQ(j.done()[0]["id"], "a");
  }
  {
    ResultJournal other(path, json{{"model", "other"}}, ids_in({"a"}), "results");
    EXPECT_TRUE(other.done().empty()) << "made with another model";
  }
  // A file that is not a journal is refused, not overwritten.
  test::write_bytes(path, "my notes\n");
  EXPECT_FALSE(ResultJournal::written_by_c3(path));
  EXPECT_FALSE(written_by_eval(path));
  EXPECT_THAT(test::error_of<Error>([&] { ResultJournal(path, key, ids_in({}), "results"); }),
              testing::HasSubstr("not a c3 eval journal"));
  EXPECT_EQ(test::read_bytes(path), "my notes\n");
}

}  // namespace
}  // namespace c3
