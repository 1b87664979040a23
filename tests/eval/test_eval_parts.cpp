// The parts of `c3 eval` that do not need a model: the position curve, the control
// perturbations, reading benchmark and prediction files, buckets, and the report.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>

#include "c3/eval/eval_data.h"
#include "c3/eval/evaluator.h"
#include "c3/eval/perturb.h"
#include "c3/eval/position_curve.h"
#include "c3/eval/report.h"
#include "c3/tokenizer/unicode.h"
#include "c3/util/error.h"
#include "eval/svg_plot.h"
#include "test_support.h"

namespace c3 {
namespace {

namespace fs = std::filesystem;
using testing::HasSubstr;
using json = nlohmann::json;

TEST(PositionCurve, LocatesWhatTheOutputLost) {
  const std::u32string truth = U"abcdefghijklmnopqrst";  // 20 characters, 2 per tenth
  for (double v : position_curve(truth, truth)) EXPECT_EQ(v, 1.0);
  // The output stops half way: the first five tenths are there, the rest is lost.
  const auto half = position_curve(truth, U"abcdefghij");
  for (int b = 0; b < 10; ++b) EXPECT_EQ(half[b], b < 5 ? 1.0 : 0.0) << b;
  // One character changed in the 4th tenth (index 7), one dropped in the 9th (index 17).
  const auto flawed = position_curve(truth, U"abcdefgXijklmnopqst");
  for (int b = 0; b < 10; ++b) EXPECT_EQ(flawed[b], b == 3 || b == 8 ? 0.5 : 1.0) << b;
  // Extra output (a repetition loop) costs the truth nothing.
  for (double v : position_curve(truth, truth + U"zzzzzz" + truth)) EXPECT_EQ(v, 1.0);
  for (double v : position_curve(truth, U"")) EXPECT_EQ(v, 0.0);
  // "alpha beta" could also be aligned with its "ta" on the end of "delta": the early match wins.
  const auto stopped = position_curve(U"alpha beta gamma delta", U"alpha beta");
  EXPECT_EQ(stopped[0], 1.0);
  EXPECT_EQ(stopped[9], 0.0);
  const auto shorter = position_curve(U"abc", U"abc");
  EXPECT_EQ(std::count_if(shorter.begin(), shorter.end(), [](double v) { return std::isnan(v); }), 7)
      << "a truth of 3 characters fills 3 of 10 bins";
}

std::vector<std::string> sorted_words(const std::string& text) {
  auto words = split_words(text);
  std::sort(words.begin(), words.end());
  return words;
}

TEST(Perturb, ShufflingKeepsWordsAndLayoutRandomCharsKeepLengths) {
  const std::string text = "one two  three\nfour five\tsix seven eight nine ten";
  EXPECT_EQ(perturb(text, Perturbation::kNone, 1), text);
  const std::string shuffled = perturb(text, Perturbation::kShuffleWords, 1);
  EXPECT_NE(shuffled, text);
  EXPECT_EQ(sorted_words(shuffled), sorted_words(text)) << "the same words";
  ASSERT_EQ(shuffled.size(), text.size());
  const auto spacing = [](const std::string& t) {  // the whitespace runs, in order
    std::string s;
    for (char c : t) s += (c == ' ' || c == '\n' || c == '\t') ? c : '.';
    std::string runs;
    for (size_t i = 0; i < s.size(); ++i)
      if (s[i] != '.' || (i > 0 && s[i - 1] != '.')) runs += s[i];
    return runs;
  };
  EXPECT_EQ(spacing(shuffled), spacing(text)) << "the whitespace between words stays in order";
  EXPECT_EQ(perturb(text, Perturbation::kShuffleWords, 1), shuffled) << "deterministic in the seed";
  EXPECT_NE(perturb(text, Perturbation::kShuffleWords, 2), shuffled);
  const std::string random = perturb("héllo  wörld\n42", Perturbation::kRandomChars, 3);
  const auto words = split_words(random);
  ASSERT_EQ(words.size(), 3u);
  EXPECT_EQ(words[0].size(), 5u) << "5 characters (é became one ASCII letter)";
  EXPECT_EQ(words[2].size(), 2u);
  EXPECT_EQ(random.substr(5, 2), "  ");
  EXPECT_EQ(random[12], '\n');
  for (char c : random) EXPECT_TRUE(std::isalnum(static_cast<unsigned char>(c)) || c == ' ' || c == '\n');
  EXPECT_EQ(parse_perturbation("shuffle-words"), Perturbation::kShuffleWords);
  EXPECT_THAT(test::error_of<UsageError>([] { parse_perturbation("reverse"); }), HasSubstr("shuffle-words"));
}

TEST(EvalData, ReadsFoxPagesAndJsonl) {
  test::TempDir dir;
  const json fox = json::array(
      {{{"image", "en_1.png"},
        {"len", 3},
        {"conversations",
         {{{"from", "human"}, {"value", "<image>\nOCR this image: "}}, {{"from", "gpt"}, {"value", " raw text \n"}}}}},
       {{"image", "en_2.png"},
        {"conversations", {{{"from", "human"}, {"value", "q"}}, {{"from", "gpt"}, {"value", "second"}}}}}});
  test::write_bytes(dir / "fox.json", fox.dump(4));
  const auto pages = read_eval_data(dir / "fox.json").pages;
  ASSERT_EQ(pages.size(), 2u);
  EXPECT_EQ(pages[0].id, "en_1.png");
  EXPECT_EQ(pages[0].text, " raw text \n") << "taken raw";
  test::write_bytes(dir / "p.jsonl", "{\"id\": \"a\", \"text\": \"x\"}\n\n{\"text\": \"y\"}\n");
  const auto lines = read_eval_data(dir / "p.jsonl").pages;
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_EQ(lines[1].id, "3") << "the line number when there is no id";
  fs::create_directories(dir / "folder" / "sub");
  test::write_bytes(dir / "folder" / "sub" / "b.txt", "bee");
  test::write_bytes(dir / "folder" / "a.txt", "ay");
  test::write_bytes(dir / "folder" / "c.md", "see");
  test::write_bytes(dir / "folder" / "skip.json", "not a page");
  test::write_bytes(dir / "folder" / "empty.txt", "\n");
  const auto folder = read_eval_data(dir / "folder");
  ASSERT_EQ(folder.pages.size(), 3u) << "the text files compress would take";
  EXPECT_EQ(folder.pages[0].id, "a.txt");
  EXPECT_EQ(folder.pages[1].id, "c.md");
  EXPECT_EQ(folder.pages[2].id, "sub/b.txt");
  EXPECT_EQ(folder.pages[2].text, "bee");
  ASSERT_EQ(folder.rejected.size(), 1u);
  EXPECT_EQ(folder.rejected[0].first, (dir / "folder" / "empty.txt").string());
  EXPECT_THAT(folder.rejected[0].second, HasSubstr("empty"));
  EXPECT_EQ(read_eval_data(dir / "folder", {}, {"sub"}).pages.size(), 2u);
  const auto one = read_eval_data(dir / "folder" / "c.md");
  ASSERT_EQ(one.pages.size(), 1u) << "a text file is one page";
  EXPECT_EQ(one.pages[0].text, "see");
  // Errors name the file, and the line.
  test::write_bytes(dir / "bad.jsonl", "{\"text\": \"x\"}\n{\"txt\": 1}\n");
  EXPECT_THAT(test::error_of<Error>([&] { read_eval_data(dir / "bad.jsonl"); }),
              HasSubstr("bad.jsonl:2: missing the string field \"text\""));
  test::write_bytes(dir / "dup.jsonl", "{\"id\": 1, \"text\": \"x\"}\n{\"id\": 1, \"text\": \"y\"}\n");
  EXPECT_THAT(test::error_of<Error>([&] { read_eval_data(dir / "dup.jsonl"); }), HasSubstr("appears twice"));
  test::write_bytes(dir / "cut.json", "[{\"image\": ");
  EXPECT_THAT(test::error_of<Error>([&] { read_eval_data(dir / "cut.json"); }), HasSubstr("cut.json: not valid JSON"));
  EXPECT_THAT(test::error_of<Error>([&] { read_eval_data(dir / "none.json"); }), HasSubstr("none.json: no such file"));
  // Prediction files in both schemas.
  test::write_bytes(
      dir / "s.jsonl",
      "{\"label\": \"a b\", \"answer\": \"a\"}\n{\"reference\": \"c\", \"prediction\": \"c\", \"id\": \"z\"}\n");
  const auto pairs = read_scored_pairs((dir / "s.jsonl").string());
  ASSERT_EQ(pairs.size(), 2u);
  EXPECT_EQ(pairs[0].reference, "a b");
  EXPECT_EQ(pairs[0].prediction, "a");
  EXPECT_EQ(pairs[1].id, "z");
  test::write_bytes(dir / "s2.jsonl", "{\"label\": \"a\"}\n");
  EXPECT_THAT(test::error_of<Error>([&] { read_scored_pairs((dir / "s2.jsonl").string()); }),
              HasSubstr("s2.jsonl:1: missing the string field \"answer\""));
}

TEST(EvalData, BucketsFollowTheDeepSeekProtocol) {
  const Buckets b;  // 600-1300 by 100
  EXPECT_EQ(b.count(), 7);
  EXPECT_EQ(b.index(599), -1);
  EXPECT_EQ(b.index(600), 0);
  EXPECT_EQ(b.index(699), 0);
  EXPECT_EQ(b.index(700), 1);
  EXPECT_EQ(b.index(1300), 6) << "the last bucket holds its upper end";
  EXPECT_EQ(b.index(1301), -1);
  EXPECT_EQ(b.label(6), "1200-1300");
  EXPECT_EQ((Buckets{10, 35, 10}).label(2), "30-35");
  EXPECT_THROW((Buckets{10, 10, 5}).check(), UsageError);
}

PageResult result(const std::string& id, const std::string& condition, const std::string& bucket, double ratio,
                  const std::string& truth, const std::string& output) {
  PageResult r;
  r.id = id, r.condition = condition, r.bucket_label = bucket, r.ratio = ratio, r.text = truth,
  r.reconstruction = output;
  r.scores = score_page(truth, output);
  r.position_curve = position_curve(unicode::code_points(truth), unicode::code_points(output));
  return r;
}

TEST(EvalReport, SummarisesByConditionAndBucketNextToThePublishedNumbers) {
  const Buckets buckets{600, 800, 100};
  const std::vector<PageResult> pages = {
      result("a", "none", "600-700", 20.0, "alpha beta gamma delta", "alpha beta gamma delta"),
      result("b", "none", "600-700", 22.0, "alpha beta gamma delta", "alpha beta"),
      result("c", "none", "700-800", 24.0, "x y", "x y"),
      result("a", "shuffle-words", "600-700", 20.0, "c a d b", "a")};
  const json summary = summarize(pages, buckets, {"none", "shuffle-words"}, {{"model", "m"}, {"latent_tokens", 32}});
  const json& none = summary["conditions"]["none"];
  EXPECT_EQ(none["overall"]["pages"], 3);
  ASSERT_EQ(none["buckets"].size(), 2u);
  EXPECT_EQ(none["buckets"][0]["bucket"], "600-700");
  EXPECT_DOUBLE_EQ(none["buckets"][0]["precision"].get<double>(), 0.75);
  EXPECT_DOUBLE_EQ(none["buckets"][0]["mean_ratio"].get<double>(), 21.0);
  // Page b kept the first 10 of 22 characters: its curve drops to 0 after the middle.
  EXPECT_DOUBLE_EQ(none["buckets"][0]["position_curve"][0].get<double>(), 1.0);
  EXPECT_DOUBLE_EQ(none["buckets"][0]["position_curve"][9].get<double>(), 0.5);
  EXPECT_EQ(summary["conditions"]["shuffle-words"]["overall"]["pages"], 1);
  EXPECT_EQ(summary["model"], "m");
  const std::string md = report_markdown(summary);
  EXPECT_THAT(md, HasSubstr("| 600-700 | 2 | 21.0x | 75.0% |"));
  EXPECT_THAT(md, HasSubstr("## Control: shuffle-words"));
  EXPECT_THAT(md, HasSubstr("| 1200-1300 | 4 | - | - | 59.1% @ 19.7x | 87.1% @ 12.6x |"));
  EXPECT_THAT(md, HasSubstr("| 600-700 | 7 | 75.0% @ 21.0x (2 pages) |"));
  const std::string plot = precision_plot_svg(summary, pages);
  EXPECT_EQ(plot.rfind("<svg", 0), 0u);
  // 4 pages + 3 bucket means + 7 + 7 DeepSeek points + 2 C3 points, plus the legend's markers of
  // the 5 point series (the 2 bucket-mean series have line markers).
  size_t circles = 0;
  for (size_t at = plot.find("<circle"); at != std::string::npos; at = plot.find("<circle", at + 1)) ++circles;
  EXPECT_EQ(circles, 4u + 3u + 14u + 2u + 5u);
  EXPECT_THAT(position_plot_svg(summary), HasSubstr("700-800 tokens"));
  EXPECT_EQ(xml_escape("a<b & \"c\""), "a&lt;b &amp; &quot;c&quot;");
}

TEST(EvalReport, PageResultsRoundTripThroughJson) {
  PageResult r = result("p", "random-chars", "600-700", 20.5, "abc", "ab");
  r.page_tokens = 650, r.text_tokens = 700, r.generated_tokens = 3;
  const PageResult back = PageResult::from_json(json::parse(r.to_json().dump()));
  EXPECT_EQ(back.to_json(), r.to_json());
  EXPECT_TRUE(std::isnan(back.position_curve[9]));
}

}  // namespace
}  // namespace c3
