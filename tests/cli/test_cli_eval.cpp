// `c3 eval`: the scorer on any predictions, and the model run with its report, controls and
// resumption after a kill.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <signal.h>
#include <sys/wait.h>
#include <fstream>
#include <sstream>

#include <chrono>

#include <nlohmann/json.hpp>

#include "cli_support.h"

namespace c3 {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using test::c3;
using testing::HasSubstr;
using testing::Not;

TEST(CliEval, ScoresPredictionsWithoutAModel) {
  test::TempDir dir;
  test::write_bytes(dir / "pred.jsonl",
                    "{\"label\": \"a b c d e\", \"answer\": \"a b c d x y\"}\n"
                    "{\"id\": \"same\", \"label\": \"same text\", \"answer\": \"same text\"}\n"
                    "{\"reference\": \"hello world\", \"prediction\": \"\"}\n");
  auto r = c3("eval --score pred.jsonl", dir);
  ASSERT_EQ(r.code, 0) << r.err;
  const json summary = json::parse(r.out);
  EXPECT_EQ(summary["pages"], 3);
  EXPECT_DOUBLE_EQ(summary["precision"].get<double>(), (0.8 + 1.0 + 0.0) / 3);  // worked in test_fox_metrics
  EXPECT_DOUBLE_EQ(summary["edit_distance"].get<double>(), (3.0 / 11.0 + 0.0 + 1.0) / 3);
  EXPECT_DOUBLE_EQ(summary["exact_match"].get<double>(), 1.0 / 3);
  for (const char* key : {"recall", "f1", "bleu", "one_minus_edit_distance"}) EXPECT_TRUE(summary.contains(key)) << key;
  // --per-page: one line per record, then the summary line; stdin works as a file.
  r = c3("eval --score - --per-page < pred.jsonl", dir);
  ASSERT_EQ(r.code, 0) << r.err;
  ASSERT_EQ(test::lines(r.out), 4);
  const json first = json::parse(r.out.substr(0, r.out.find('\n')));
  EXPECT_EQ(first["id"], "1");
  EXPECT_DOUBLE_EQ(first["recall"].get<double>(), 4.0 / 6.0);
  EXPECT_EQ(json::parse(r.out.substr(r.out.rfind('\n', r.out.size() - 2) + 1)), summary);
  // Bad input: one line naming the file and the line; misuse is a usage error.
  test::write_bytes(dir / "bad.jsonl", "{\"label\": \"a\", \"answer\": \"a\"}\n{\"label\": \"a\"\n");
  r = c3("eval --score bad.jsonl", dir);
  EXPECT_EQ(r.code, 1);
  EXPECT_THAT(r.err, HasSubstr("bad.jsonl:2: not valid JSON"));
  EXPECT_EQ(c3("eval --score pred.jsonl -m somewhere", dir).code, 2);
  EXPECT_EQ(c3("eval", dir).code, 2);
  r = c3("eval --score pred.jsonl -o out", dir);
  EXPECT_EQ(r.code, 2) << "-o is not silently ignored";
  EXPECT_THAT(r.err, HasSubstr("leave out -o"));
  EXPECT_FALSE(fs::exists(dir / "out"));
  EXPECT_EQ(c3("eval pages.json -m m -o out --per-page", dir).code, 2);
  // A label of the wrong type is named for what it is, not as missing.
  test::write_bytes(dir / "typed.jsonl", "{\"label\": 42, \"answer\": \"42\"}\n");
  r = c3("eval --score typed.jsonl", dir);
  EXPECT_EQ(r.code, 1);
  EXPECT_THAT(r.err, HasSubstr("typed.jsonl:1: the field \"label\" holds a number (42), not a string"));
}

// A folder of pages is read as compress reads one (.md too, the same globs); pages compress would
// refuse (empty, not UTF-8, binary) are named and left out instead of scoring zeros; one text file
// is one page.
TEST(CliEval, FoldersAreTakenAsCompressTakesThemAndBadPagesAreNamedAndLeftOut) {
  const auto& m = test::trained_model();
  test::TempDir dir;
  fs::create_directories(dir / "pages" / "sub");
  test::write_bytes(dir / "pages" / "a.txt", m.texts[0]);
  test::write_bytes(dir / "pages" / "sub" / "b.md", m.texts[1]);
  test::write_bytes(dir / "pages" / "blank.txt", "  \n");
  test::write_bytes(dir / "pages" / "image.txt", "\x89PNG\r\n\x1a\n\xff\x00");
  test::write_bytes(dir / "pages" / "zeros.txt", std::string(64, '\0'));
  test::write_bytes(dir / "pages" / "data.json", "{}");
  const std::string args = "--threads 1 eval -m '" + m.model() + "' --min-tokens 1 --max-new-tokens 64 ";
  auto r = c3(args + "pages -o out", dir);
  EXPECT_EQ(r.code, 1) << r.err;
  EXPECT_THAT(r.err, HasSubstr("pages/blank.txt: empty"));
  EXPECT_THAT(r.err, HasSubstr("pages/image.txt: not valid UTF-8 text"));
  EXPECT_THAT(r.err, HasSubstr("pages/zeros.txt: binary"));
  EXPECT_THAT(r.err, HasSubstr("3 pages of pages could not be evaluated"));
  EXPECT_THAT(r.err, Not(HasSubstr("U+FFFD")));
  const json summary = json::parse(test::read_bytes(dir / "out" / "summary.json"));
  EXPECT_EQ(summary["conditions"]["none"]["overall"]["pages"], 2) << "a.txt and sub/b.md, nothing scored as 0";
  EXPECT_EQ(summary["rejected_pages"].size(), 3u);
  EXPECT_DOUBLE_EQ(summary["conditions"]["none"]["overall"]["precision"].get<double>(), 1.0);
  // --include/--exclude as compress's.
  r = c3(args + "pages -o md --include '*.md'", dir);
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(json::parse(test::read_bytes(dir / "md" / "summary.json"))["conditions"]["none"]["overall"]["pages"], 1);
  // One text file is one page, not "not valid JSON".
  r = c3(args + "pages/a.txt -o one", dir);
  ASSERT_EQ(r.code, 0) << r.err;
  const json one = json::parse(test::read_bytes(dir / "one" / "pages.jsonl"));
  EXPECT_EQ(one["id"], "a.txt");
  EXPECT_EQ(one["reconstruction"], m.texts[0]);
  r = c3(args + "pages/blank.txt -o none", dir);
  EXPECT_EQ(r.code, 1);
  EXPECT_THAT(r.err, HasSubstr("pages/blank.txt: empty"));
}

// The fixture's texts as a Fox page-OCR file.
void write_fox_file(const fs::path& path, const std::vector<std::string>& texts) {
  json pages = json::array();
  for (size_t i = 0; i < texts.size(); ++i)
    pages.push_back(
        {{"image", "en_" + std::to_string(i) + ".png"},
         {"conversations",
          {{{"from", "human"}, {"value", "<image>\nOCR this image: "}}, {{"from", "gpt"}, {"value", texts[i]}}}}});
  test::write_bytes(path, pages.dump(1));
}

// Starts `c3 ARGS FOLDER` in `dir` and SIGKILLs it (nothing is cleaned up) once its journal
// FOLDER/JOURNAL holds at least `lines` lines; returns the journal's text. The run must not have
// finished.
std::string kill_once_journaled(const test::TempDir& dir, const std::string& args, const std::string& folder,
                                const std::string& journal, int lines) {
  const pid_t pid =
      test::spawn_shell("cd '" + dir.path().string() + "' && exec '" C3_BINARY "' " + args + folder + " 2>/dev/null");
  const fs::path path = dir / folder / journal;
  test::wait_until([&] { return fs::exists(path) && test::lines(test::read_bytes(path)) >= lines; },
                   std::chrono::milliseconds(1));
  kill(pid, SIGKILL);
  test::wait_exit(pid);
  EXPECT_FALSE(fs::exists(dir / folder / "summary.json")) << "killed part way";
  return test::read_bytes(path);
}

TEST(CliEval, WritesTheReportAndResumesAKilledRun) {
  const auto& m = test::trained_model();
  test::TempDir dir;
  write_fox_file(dir / "pages.json", m.texts);
  const std::string common = "--threads 1 eval -m '" + m.model() +
                             "' pages.json --min-tokens 1 --max-tokens 400 "
                             "--bucket-width 100 --perturb shuffle-words --perturb random-chars --batch-size 1 ";
  const std::string args = common + "--max-new-tokens 64 -o ";
  auto r = c3(args + "straight --progress-every 0.000001", dir);
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_THAT(r.err, HasSubstr("] eval 36/36 pages | ")) << "progress lines in a batch log";
  EXPECT_EQ(
      test::files_under(dir / "straight"),
      (std::vector<std::string>{".pages.jsonl.c3-job", ".position_curve.svg.c3-job", ".precision_vs_ratio.svg.c3-job",
                                ".report.md.c3-job", ".summary.json.c3-job", "pages.jsonl", "position_curve.svg",
                                "precision_vs_ratio.svg", "report.md", "summary.json"}))
      << "the outputs, each with the record that shows c3 wrote it";
  const json summary = json::parse(test::read_bytes(dir / "straight" / "summary.json"));
  const json& none = summary["conditions"]["none"]["overall"];
  EXPECT_EQ(none["pages"], 12);
  EXPECT_EQ(none["precision"], 1.0) << "the fixture model reproduces its texts";
  EXPECT_EQ(none["exact_match"], 1.0);
  for (const auto& v : none["position_curve"]) EXPECT_EQ(v, 1.0);
  EXPECT_GT(none["mean_ratio"].get<double>(), 1.0);
  EXPECT_EQ(summary["conditions"]["shuffle-words"]["overall"]["pages"], 12);
  EXPECT_LT(summary["conditions"]["random-chars"]["overall"]["precision"].get<double>(), 0.5)
      << "random characters are not what it learned";
  EXPECT_EQ(test::lines(test::read_bytes(dir / "straight" / "pages.jsonl")), 36);
  const std::string report = test::read_bytes(dir / "straight" / "report.md");
  EXPECT_THAT(report, HasSubstr("| **all** | 12 |"));
  EXPECT_THAT(report, HasSubstr("DeepSeek-OCR, 64 vision tokens"));
  EXPECT_THAT(test::read_bytes(dir / "straight" / "precision_vs_ratio.svg"), HasSubstr("</svg>"));
  // A finished evaluation is not overwritten by accident.
  r = c3(args + "straight", dir);
  EXPECT_EQ(r.code, 1);
  EXPECT_THAT(r.err, HasSubstr("already holds a finished evaluation"));

  // Kill a run part way; the next run finishes it.
  const fs::path journal = dir / "killed" / "pages.partial.jsonl";
  const std::string journal_text = kill_once_journaled(dir, args, "killed", "pages.partial.jsonl", 4);
  const std::string header = journal_text.substr(0, journal_text.find('\n') + 1);
  const int kept = test::lines(journal_text) - 1;
  r = c3(args + "killed", dir);
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_THAT(r.err, HasSubstr("resuming: " + std::to_string(kept) + " page results"));
  EXPECT_EQ(test::read_bytes(dir / "killed" / "pages.jsonl"), test::read_bytes(dir / "straight" / "pages.jsonl"));
  EXPECT_FALSE(fs::exists(journal));

  // An interrupted run whose data changed since: only the changed page's results are redone.
  // (Its journal: every result of the straight run, under the killed run's header.)
  const std::string all_results = header + test::read_bytes(dir / "straight" / "pages.jsonl");
  fs::create_directories(dir / "edited");
  test::write_bytes(dir / "edited" / "pages.partial.jsonl", all_results);
  auto texts = m.texts;
  std::swap(texts[2], texts[3]);  // pages en_2 and en_3 now hold each other's text
  write_fox_file(dir / "edited.json", texts);
  r = c3("--threads 1 eval -m '" + m.model() +
             "' edited.json --min-tokens 1 --max-tokens 400 --bucket-width 100 "
             "--perturb shuffle-words --perturb random-chars --batch-size 1 --max-new-tokens 64 -o edited",
         dir);
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_THAT(r.err, HasSubstr("6 page results are out of date"));
  EXPECT_THAT(r.err, HasSubstr("resuming: 30 page results"));
  std::istringstream results(test::read_bytes(dir / "edited" / "pages.jsonl"));
  for (std::string line; std::getline(results, line);) {
    const json page = json::parse(line);
    if (page["condition"] == "none" && page["id"] == "en_2.png") {
      EXPECT_EQ(page["reconstruction"], m.texts[3]);
    }
  }
  // Results made with other settings are redone, said in a warning.
  fs::create_directories(dir / "other");
  test::write_bytes(dir / "other" / "pages.partial.jsonl", all_results);
  r = c3(common + "--max-new-tokens 32 -o other", dir);
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_THAT(r.err, HasSubstr("36 page results were made with another model or settings: redoing them"));
}

TEST(CliEval, PagesLongerThanTheSpanLimitAreCutIntoSpansAndSaySo) {
  const auto& m = test::trained_model();
  test::TempDir dir;
  write_fox_file(dir / "pages.json", m.texts);
  const std::string args = "--threads 1 eval -m '" + m.model() +
                           "' pages.json --min-tokens 1 --max-tokens 400 "
                           "--bucket-width 100 --batch-size 4 --max-new-tokens 32 ";
  auto r = c3(args + "-o whole", dir);
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_THAT(r.err, Not(HasSubstr("cut into spans"))) << "the model's window holds every page";
  r = c3(args + "--max-span-tokens 8 -o cut", dir);
  ASSERT_EQ(r.code, 0) << r.err;
  const json summary = json::parse(test::read_bytes(dir / "cut" / "summary.json"));
  const int64_t latents = summary["latent_tokens"];
  int64_t cut = 0;
  std::istringstream pages(test::read_bytes(dir / "cut" / "pages.jsonl"));
  for (std::string line; std::getline(pages, line);) {
    const json page = json::parse(line);
    const int64_t tokens = page["text_tokens"], spans = page["spans"];
    EXPECT_GE(spans * 8, tokens) << line;
    EXPECT_LT((spans - 1) * 6, tokens) << line << ": spans end at a word boundary in their last quarter, else at 8";
    EXPECT_DOUBLE_EQ(page["ratio"].get<double>(), static_cast<double>(tokens) / static_cast<double>(latents * spans));
    EXPECT_GT(page["generated_tokens"].get<int64_t>(), spans) << "every span was decoded";
    cut += spans > 1;
  }
  EXPECT_GT(cut, 6);
  EXPECT_THAT(r.err, HasSubstr(std::to_string(cut) + " of 12 pages have more than 8 text tokens (--max-span-tokens)"));
  EXPECT_EQ(summary["generation"]["pages_cut_into_spans"], cut);
  EXPECT_EQ(summary["generation"]["max_span_tokens"], 8);
  EXPECT_THAT(test::read_bytes(dir / "cut" / "report.md"),
              HasSubstr("- spans: " + std::to_string(cut) + " pages longer than 8"));
  EXPECT_LT(summary["conditions"]["none"]["overall"]["mean_ratio"].get<double>(),
            json::parse(test::read_bytes(dir / "whole" / "summary.json"))["conditions"]["none"]["overall"]["mean_ratio"]
                .get<double>());
}

// --task continue on documents cut into spans: one row per k that some span reaches, every row's
// losses finite, the losses of each target recorded, and the same refusals as eval's.
// The fixture's texts as 4 documents of 3 texts each (several spans each at 8 tokens a span).
std::vector<std::string> fixture_documents(const test::TrainedModel& m) {
  std::vector<std::string> documents;
  for (size_t i = 0; i + 2 < m.texts.size(); i += 3)
    documents.push_back(m.texts[i] + " " + m.texts[i + 1] + " " + m.texts[i + 2]);
  return documents;
}

TEST(CliEval, ContinueTaskReportsTheContextUtilityPerSpansBack) {
  const auto& m = test::trained_model();
  test::TempDir dir;
  const std::vector<std::string> documents = fixture_documents(m);
  test::write_jsonl(dir / "docs.jsonl", documents);
  const std::string args = "--threads 1 eval --task continue -m '" + m.model() +
                           "' docs.jsonl --max-span-tokens 8 --spans-back 1 --spans-back 2 --spans-back 64 ";
  auto r = c3(args + "-o out", dir);
  ASSERT_EQ(r.code, 0) << r.err;
  const json summary = json::parse(test::read_bytes(dir / "out" / "summary.json"));
  EXPECT_EQ(summary["task"], "continue");
  EXPECT_EQ(summary["documents"], 4);
  ASSERT_EQ(summary["rows"].size(), 2u) << "no document has 64 spans";
  EXPECT_EQ(summary["rows"][0]["spans_back"], 1);
  EXPECT_EQ(summary["rows"][1]["spans_back"], 2);
  EXPECT_EQ(summary["rows"][0]["targets"].get<int64_t>(), summary["spans"].get<int64_t>() - 4)
      << "every span but each document's first";
  EXPECT_LT(summary["rows"][1]["targets"].get<int64_t>(), summary["rows"][0]["targets"].get<int64_t>());
  for (const char* loss : {"loss_none", "loss_latents", "loss_text"})
    EXPECT_GT(summary["rows"][0][loss].get<double>(), 0) << loss;
  std::istringstream targets(test::read_bytes(dir / "out" / "targets.jsonl"));
  int64_t lines = 0;
  for (std::string line; std::getline(targets, line); ++lines)
    EXPECT_TRUE(json::parse(line)["spans_back"].contains("1"));
  EXPECT_EQ(lines, summary["rows"][0]["targets"].get<int64_t>());
  EXPECT_THAT(test::read_bytes(dir / "out" / "report.md"), HasSubstr("| spans back | targets |"));
  // Greedy continuations under each context, scored against the real next span.
  for (const char* precision : {"precision_none", "precision_latents", "precision_text"}) {
    ASSERT_TRUE(summary["rows"][0][precision].is_number()) << precision;
    EXPECT_GE(summary["rows"][0][precision].get<double>(), 0.0);
    EXPECT_LE(summary["rows"][0][precision].get<double>(), 1.0);
  }
  EXPECT_THAT(test::read_bytes(dir / "out" / "report.md"), HasSubstr("| spans back | no context | latents | text |"));
  // The control, latents of another document's spans, is scored for every target.
  EXPECT_GT(summary["rows"][0]["loss_other"].get<double>(), 0);
  EXPECT_NE(summary["rows"][0]["loss_other"], summary["rows"][0]["loss_latents"]);
  EXPECT_TRUE(fs::exists(dir / "out" / "context_utility.svg"));
  EXPECT_THAT(test::read_bytes(dir / "out" / "context_losses.svg"), HasSubstr("latents"));
  // A finished evaluation is not replaced without --force; a file of the user's neither.
  r = c3(args + "-o out", dir);
  EXPECT_NE(r.code, 0);
  EXPECT_THAT(r.err, HasSubstr("already holds a finished evaluation"));
  fs::create_directories(dir / "mine");
  test::write_bytes(dir / "mine" / "report.md", "my notes");
  r = c3(args + "-o mine", dir);
  EXPECT_NE(r.code, 0);
  EXPECT_EQ(test::read_bytes(dir / "mine" / "report.md"), "my notes");
  // Options of the reconstruction protocol are refused, not ignored.
  r = c3(args + "-o other --perturb shuffle-words", dir);
  EXPECT_NE(r.code, 0);
  EXPECT_THAT(r.err, HasSubstr("eval.perturb is for --task reconstruct"));
  r = c3(args + "-o other --spans-back 0", dir);
  EXPECT_THAT(r.err, HasSubstr("--spans-back 0"));
  EXPECT_FALSE(fs::exists(dir / "other"));
}

// Losses alone (--max-new-tokens 0) are the losses of the run that also generates.
TEST(CliEval, ContinueTaskWithoutContinuationsScoresTheSameLosses) {
  const auto& m = test::trained_model();
  test::TempDir dir;
  test::write_jsonl(dir / "docs.jsonl", {m.texts[0] + " " + m.texts[1] + " " + m.texts[2]});
  const std::string args =
      "--threads 1 eval --task continue -m '" + m.model() + "' docs.jsonl --max-span-tokens 8 --spans-back 1 ";
  auto r = c3(args + "-o with", dir);
  ASSERT_EQ(r.code, 0) << r.err;
  r = c3(args + "--max-new-tokens 0 -o without", dir);
  ASSERT_EQ(r.code, 0) << r.err;
  const json with = json::parse(test::read_bytes(dir / "with" / "summary.json"));
  const json without = json::parse(test::read_bytes(dir / "without" / "summary.json"));
  EXPECT_TRUE(without["rows"][0]["precision_latents"].is_null());
  EXPECT_EQ(without["rows"][0]["loss_latents"], with["rows"][0]["loss_latents"]);
  EXPECT_THAT(test::read_bytes(dir / "without" / "report.md"), Not(HasSubstr("no context | latents | text")));
}

// A killed continue run resumes from its journal (targets.partial.jsonl) to the straight run's
// results; targets of a document whose text changed are redone.
TEST(CliEval, ContinueTaskResumesAKilledRun) {
  const auto& m = test::trained_model();
  test::TempDir dir;
  std::vector<std::string> documents = fixture_documents(m);
  test::write_jsonl(dir / "docs.jsonl", documents);
  const std::string args = "--threads 1 eval --task continue -m '" + m.model() +
                           "' docs.jsonl --max-span-tokens 8 --spans-back 1 --spans-back 2 --batch-size 1 -o ";
  auto r = c3(args + "straight", dir);
  ASSERT_EQ(r.code, 0) << r.err;
  const std::string straight = test::read_bytes(dir / "straight" / "targets.jsonl");

  const fs::path journal = dir / "killed" / "targets.partial.jsonl";
  const std::string journal_text = kill_once_journaled(dir, args, "killed", "targets.partial.jsonl", 3);
  const std::string header = journal_text.substr(0, journal_text.find('\n') + 1);
  const int kept = test::lines(journal_text) - 1;
  r = c3(args + "killed", dir);
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_THAT(r.err, HasSubstr("resuming: " + std::to_string(kept) + " target results"));
  EXPECT_EQ(test::read_bytes(dir / "killed" / "targets.jsonl"), straight);
  EXPECT_FALSE(fs::exists(journal));
  EXPECT_EQ(json::parse(test::read_bytes(dir / "killed" / "summary.json"))["resumed_targets"], kept);

  // Every target journaled, then the first two documents swap texts: their targets are redone.
  fs::create_directories(dir / "edited");
  test::write_bytes(dir / "edited" / "targets.partial.jsonl", header + straight);
  std::swap(documents[0], documents[1]);
  test::write_jsonl(dir / "docs.jsonl", documents);
  r = c3(args + "edited", dir);
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_THAT(r.err, HasSubstr("target results are out of date"));
  EXPECT_NE(test::read_bytes(dir / "edited" / "targets.jsonl"), straight);
  r = c3(args + "swapped-straight", dir);
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(test::read_bytes(dir / "edited" / "targets.jsonl"),
            test::read_bytes(dir / "swapped-straight" / "targets.jsonl"))
      << "the redone targets are those of the new texts";
}

// --task instruct: the fixture model, asked "Repeat the text: " about its own training texts,
// answers from their latents exactly; from nothing it cannot.
TEST(CliEval, InstructTaskScoresAnswersFromLatentsTextAndNothing) {
  const auto& m = test::trained_model();
  test::TempDir dir;
  std::ofstream records(dir / "qa.jsonl");
  for (size_t i = 0; i < 4; ++i)
    records << json{{"context", m.texts[i]}, {"instruction", "Repeat the text: "}, {"answer", m.texts[i]}}.dump()
            << "\n";
  records.close();
  auto r = c3("--threads 1 eval --task instruct -m '" + m.model() + "' qa.jsonl -o out --max-new-tokens 32", dir);
  ASSERT_EQ(r.code, 0) << r.err;
  const json summary = json::parse(test::read_bytes(dir / "out" / "summary.json"));
  EXPECT_EQ(summary["records"], 4);
  ASSERT_EQ(summary["rows"].size(), 3u);
  EXPECT_EQ(summary["rows"][0]["context"], "latents");
  EXPECT_DOUBLE_EQ(summary["rows"][0]["exact_match"].get<double>(), 1.0) << r.err;
  EXPECT_LT(summary["rows"][2]["f1"].get<double>(), 0.5) << "no context, no answer";
  std::istringstream answers(test::read_bytes(dir / "out" / "answers.jsonl"));
  std::string line;
  ASSERT_TRUE(std::getline(answers, line));
  EXPECT_EQ(json::parse(line)["latents"]["prediction"], m.texts[0]);
  EXPECT_THAT(test::read_bytes(dir / "out" / "report.md"), HasSubstr("| latents | 100.0% |"));
  r = c3("--threads 1 eval --task instruct -m '" + m.model() + "' qa.jsonl -o out", dir);
  EXPECT_THAT(r.err, HasSubstr("already holds a finished evaluation"));
  r = c3("--threads 1 eval --task instruct -m '" + m.model() + "' missing.jsonl -o other", dir);
  EXPECT_NE(r.code, 0);
  EXPECT_THAT(r.err, HasSubstr("missing.jsonl: no such file"));
}

// A killed instruct run resumes from its journal (answers.partial.jsonl) to the straight run's answers.
TEST(CliEval, InstructTaskResumesAKilledRun) {
  const auto& m = test::trained_model();
  test::TempDir dir;
  std::ofstream records(dir / "qa.jsonl");
  for (const auto& text : m.texts)
    records << json{{"context", text}, {"instruction", "Repeat the text: "}, {"answer", text}}.dump() << "\n";
  records.close();
  const std::string args = "--threads 1 eval --task instruct -m '" + m.model() + "' qa.jsonl --max-new-tokens 32 -o ";
  auto r = c3(args + "straight", dir);
  ASSERT_EQ(r.code, 0) << r.err;
  const fs::path journal = dir / "killed" / "answers.partial.jsonl";
  const int kept = test::lines(kill_once_journaled(dir, args, "killed", "answers.partial.jsonl", 2)) - 1;
  r = c3(args + "killed", dir);
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_THAT(r.err, HasSubstr("resuming: " + std::to_string(kept) + " record results"));
  EXPECT_EQ(test::read_bytes(dir / "killed" / "answers.jsonl"), test::read_bytes(dir / "straight" / "answers.jsonl"));
  const json a = json::parse(test::read_bytes(dir / "straight" / "summary.json"));
  const json b = json::parse(test::read_bytes(dir / "killed" / "summary.json"));
  EXPECT_EQ(a["rows"], b["rows"]);
  EXPECT_EQ(a["generated_tokens"], b["generated_tokens"]);
  EXPECT_EQ(b["resumed_records"], kept);
  EXPECT_FALSE(fs::exists(journal));
}

}  // namespace
}  // namespace c3
