// What a batch job may write over, and where: c3 replaces only files it can show it wrote (a latent
// file, a reconstruction or eval output with its record), checks every output path before any
// work, takes `-o DIR/` for a folder, and says what it kept when a signal stops it.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>

#include <nlohmann/json.hpp>

#include "c3/io/safetensors.h"
#include "c3/model/c3_io.h"
#include "cli_support.h"
#include "test_support.h"

namespace c3 {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using test::c3;
using test::files_under;
using test::trained_model;
using testing::HasSubstr;
using testing::Not;

std::string model_flag() { return " -m '" + trained_model().model() + "' "; }

// `count` of the fixture's texts as docs/dN.txt.
void write_docs(const test::TempDir& dir, size_t count, const std::string& folder = "docs") {
  const auto& m = trained_model();
  fs::create_directories(dir / folder);
  for (size_t i = 0; i < count; ++i)
    test::write_bytes(dir / folder / ("d" + std::to_string(i) + ".txt"), m.texts[i % m.texts.size()] + "\n");
}

TEST(CliOutputs, RestoringIntoTheSourceFolderIsRefusedAndLeavesTheOriginals) {
  test::TempDir dir;
  write_docs(dir, 4);
  ASSERT_EQ(c3("--threads 1 compress" + model_flag() + "docs -o lat", dir).code, 0);
  // The originals, edited by their owner so that a lossy reconstruction could not pass for them.
  for (int i = 0; i < 4; ++i)
    test::write_bytes(dir / "docs" / ("d" + std::to_string(i) + ".txt"), "my own words " + std::to_string(i));
  auto r = c3("--threads 1 reconstruct" + model_flag() + "lat -o docs", dir);
  EXPECT_EQ(r.code, 1);
  EXPECT_THAT(r.err, HasSubstr("docs/d0.txt: exists and is not a file c3 wrote"));
  EXPECT_THAT(r.err, HasSubstr("so do 3 more outputs"));
  EXPECT_THAT(r.err, HasSubstr("--force"));
  EXPECT_EQ(test::lines(r.err), 1) << r.err;
  for (int i = 0; i < 4; ++i)
    EXPECT_EQ(test::read_bytes(dir / "docs" / ("d" + std::to_string(i) + ".txt")), "my own words " + std::to_string(i));
  EXPECT_EQ(files_under(dir / "docs").size(), 4u) << "no records or temporaries left beside them";
  // --force replaces them, and says how many were not c3's.
  r = c3("--threads 1 reconstruct" + model_flag() + "lat -o docs --force --summary s.json", dir);
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_THAT(r.err, HasSubstr("--force: replacing 4 files that c3 did not write"));
  EXPECT_THAT(r.err, HasSubstr("reconstructed 4 files (4 replacing files c3 had not written (--force))"));
  EXPECT_EQ(json::parse(test::read_bytes(dir / "s.json"))["replaced_foreign"], 4);
  EXPECT_EQ(test::read_bytes(dir / "docs" / "d0.txt"), trained_model().texts[0] + "\n");
}

TEST(CliOutputs, SingleFileOutputsThatAreNotC3sAreRefused) {
  const auto& m = trained_model();
  test::TempDir dir;
  test::write_bytes(dir / "a.txt", m.texts[0]);
  test::write_bytes(dir / "notes.txt", "an unrelated text I wrote");
  // compress onto an unrelated text.
  auto r = c3("--threads 1 compress" + model_flag() + "a.txt -o notes.txt", dir);
  EXPECT_EQ(r.code, 1);
  EXPECT_THAT(r.err, HasSubstr("notes.txt: exists and is not a file c3 wrote"));
  EXPECT_EQ(test::read_bytes(dir / "notes.txt"), "an unrelated text I wrote");
  // reconstruct onto the original.
  ASSERT_EQ(c3("--threads 1 compress" + model_flag() + "a.txt -o a.c3", dir).code, 0);
  r = c3("--threads 1 reconstruct" + model_flag() + "a.c3 -o a.txt", dir);
  EXPECT_EQ(r.code, 1);
  EXPECT_THAT(r.err, HasSubstr("a.txt: exists and is not a file c3 wrote"));
  EXPECT_EQ(test::read_bytes(dir / "a.txt"), m.texts[0]);
  // A latent file c3 wrote is replaced when out of date, without --force.
  r = c3("--threads 1 compress" + model_flag() + "notes.txt -o a.c3", dir);
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_THAT(r.err, HasSubstr("compressed 1 file (1 of them redone"));
  // A reconstruction c3 wrote is c3's; once its owner edits it, it is theirs.
  ASSERT_EQ(c3("--threads 1 reconstruct" + model_flag() + "a.c3 -o back.txt", dir).code, 0);
  r = c3("--threads 1 reconstruct" + model_flag() + "a.c3 -o back.txt", dir);
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_THAT(r.err, HasSubstr("nothing to reconstruct: the file is up to date"));
  test::write_bytes(dir / "back.txt", "corrected by hand");
  r = c3("--threads 1 reconstruct" + model_flag() + "a.c3 -o back.txt --max-new-tokens 50", dir);
  EXPECT_EQ(r.code, 1);
  EXPECT_THAT(r.err, HasSubstr("back.txt: exists and is not a file c3 wrote (or it was changed since)"));
  EXPECT_EQ(test::read_bytes(dir / "back.txt"), "corrected by hand");
  // A folder where a file would go is named, --force or not.
  fs::create_directories(dir / "taken.c3");
  r = c3("--threads 1 compress" + model_flag() + "a.txt -o taken.c3/x --force", dir);
  EXPECT_EQ(r.code, 0) << "inside a folder is fine: " << r.err;
  fs::create_directories(dir / "lat" / "a.txt.c3");
  r = c3("--threads 1 compress" + model_flag() + "a.txt -o lat/ --force", dir);
  EXPECT_EQ(r.code, 1);
  EXPECT_THAT(r.err, HasSubstr("lat/a.txt.c3: is a folder, where c3 would write a file"));
}

TEST(CliOutputs, EvalRefusesFilesItDidNotWriteInItsFolder) {
  const auto& m = trained_model();
  test::TempDir dir;
  write_docs(dir, 3, "pages");
  fs::create_directories(dir / "out");
  test::write_bytes(dir / "out" / "report.md", "# my notes");
  test::write_bytes(dir / "out" / "keep.txt", "other things");
  const std::string args = "--threads 1 eval" + model_flag() + "pages --min-tokens 1 --max-new-tokens 40 -o out";
  auto r = c3(args, dir);
  EXPECT_EQ(r.code, 1);
  EXPECT_THAT(r.err, HasSubstr("out/report.md: exists and is not a file c3 wrote"));
  EXPECT_EQ(test::read_bytes(dir / "out" / "report.md"), "# my notes");
  EXPECT_FALSE(fs::exists(dir / "out" / "summary.json"));
  r = c3(args + " --force", dir);
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_THAT(r.err, HasSubstr("replacing 1 file that c3 did not write"));
  const json summary = json::parse(test::read_bytes(dir / "out" / "summary.json"));
  EXPECT_EQ(summary["foreign_files_replaced"], 1);
  EXPECT_EQ(test::read_bytes(dir / "out" / "keep.txt"), "other things") << "what eval does not write stays";
  // Its own outputs are its own: a finished run is refused as finished, and --force redoes it quietly.
  r = c3(args, dir);
  EXPECT_EQ(r.code, 1);
  EXPECT_THAT(r.err, HasSubstr("already holds a finished evaluation"));
  r = c3(args + " --force", dir);
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_THAT(r.err, Not(HasSubstr("did not write")));
  (void)m;
}

TEST(CliOutputs, ATrailingSlashMeansAFolderAndOutputPathsAreCheckedBeforeAnyWork) {
  const auto& m = trained_model();
  test::TempDir dir;
  test::write_bytes(dir / "a.txt", m.texts[1]);
  auto r = c3("--threads 1 compress" + model_flag() + "a.txt -o lat/", dir);
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(files_under(dir / "lat"), std::vector<std::string>{"a.txt.c3"});
  r = c3("--threads 1 compress" + model_flag() + "- -o fromstdin/ < a.txt", dir);
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(files_under(dir / "fromstdin"), std::vector<std::string>{"stdin.c3"});
  r = c3("--threads 1 reconstruct" + model_flag() + "lat/a.txt.c3 -o restored/", dir);
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(test::read_bytes(dir / "restored" / "a.txt"), m.texts[1]);
  // Paths that cannot be written are named before the model is even loaded (a missing model is not
  // what the error says).
  test::write_bytes(dir / "plain", "a file");
  r = c3("--threads 1 reconstruct -m missing lat -o plain/sub", dir);
  EXPECT_EQ(r.code, 1);
  EXPECT_THAT(r.err, HasSubstr("plain: is a file, so the folder plain/sub"));
  r = c3("--threads 1 reconstruct -m missing lat -o rec --summary plain/s.json", dir);
  EXPECT_EQ(r.code, 1);
  EXPECT_THAT(r.err, HasSubstr("plain: is a file"));
  r = c3("--threads 1 compress -m missing a.txt -o plain/", dir);
  EXPECT_EQ(r.code, 1);
  EXPECT_THAT(r.err, HasSubstr("plain: is a file, not a folder"));
  // A summary into a folder that does not exist yet: made, as --log-file's.
  r = c3("--threads 1 reconstruct" + model_flag() + "lat -o rec2 --summary reports/today/r.json", dir);
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(json::parse(test::read_bytes(dir / "reports" / "today" / "r.json"))["written"], 1);
}

TEST(CliOutputs, ASignalStopsAJobSayingWhatWasKeptAndARerunFinishesIt) {
  const auto& m = trained_model();
  test::TempDir dir;
  write_docs(dir, 120);
  ASSERT_EQ(c3("--threads 1 compress" + model_flag() + "docs -o lat", dir).code, 0);
  for (int signal : {SIGINT, SIGTERM}) {
    const std::string out = "rec" + std::to_string(signal);
    const std::string args = "--threads 1 reconstruct" + model_flag() + "lat -o " + out +
                             " --batch-size 4 --max-new-tokens 64 --summary " + out + ".json";
    const pid_t pid = test::spawn_shell("cd '" + dir.path().string() + "' && exec '" + C3_BINARY + "' " + args + " 2>" +
                                        out + ".err");
    test::wait_until([&] { return fs::exists(dir / out) && files_under(dir / out).size() >= 8; });
    kill(pid, signal);
    EXPECT_EQ(test::wait_exit(pid), 128 + signal);
    const std::string err = test::read_bytes(dir / (out + ".err"));
    const std::string name = signal == SIGINT ? "SIGINT" : "SIGTERM";
    EXPECT_THAT(err, HasSubstr("interrupted by " + name + ": the "));
    EXPECT_THAT(err, HasSubstr("rerun the same command to reconstruct the other"));
    const json summary = json::parse(test::read_bytes(dir / (out + ".json")));
    EXPECT_EQ(summary["interrupted_by"], name);
    const int64_t written = summary["written"], not_done = summary["not_done"];
    EXPECT_GT(written, 0);
    EXPECT_GT(not_done, 0);
    EXPECT_EQ(written + not_done, 120);
    const auto r = c3(args, dir);
    ASSERT_EQ(r.code, 0) << r.err;
    EXPECT_THAT(r.err, HasSubstr("reconstructed " + std::to_string(not_done) + " files, " + std::to_string(written) +
                                 " already up to date"));
  }
  // eval: the journal keeps the finished pages.
  write_docs(dir, 40, "pages");
  const std::string args =
      "--threads 1 eval" + model_flag() + "pages --min-tokens 1 --batch-size 2 --max-new-tokens 64 -o ev";
  const pid_t pid =
      test::spawn_shell("cd '" + dir.path().string() + "' && exec '" + C3_BINARY + "' " + args + " 2>ev.err");
  test::wait_until([&] {
    return fs::exists(dir / "ev" / "pages.partial.jsonl") &&
           test::lines(test::read_bytes(dir / "ev" / "pages.partial.jsonl")) > 4;
  });
  kill(pid, SIGINT);
  EXPECT_EQ(test::wait_exit(pid), 130);
  EXPECT_THAT(test::read_bytes(dir / "ev.err"),
              HasSubstr("page results are kept in ev/pages.partial.jsonl; rerun the same command"));
  const auto r = c3(args, dir);
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_THAT(r.err, HasSubstr("resuming: "));
  (void)m;
}

// A model whose decoder only emits the control tokens <s> and </s> (which decode to nothing): all
// its spans come back empty, and the warning says in which files.
TEST(CliOutputs, EmptySpansAreNamedByTheirFiles) {
  const auto& m = trained_model();
  test::TempDir dir;
  {
    C3Model model = load_c3(m.model());
    torch::NoGradGuard no_grad;
    // Only hidden dimension 0 reaches the logits, and only <s> (+) and </s> (-) read it: whatever
    // its sign, one of the two wins.
    model->decoder->model->norm->weight.zero_();
    model->decoder->model->norm->weight[0] = 1;
    at::Tensor lm_head = model->decoder->output_embedding();
    lm_head.select(1, 0).zero_();
    lm_head[1][0] = 1, lm_head[2][0] = -1;
    save_c3(model, dir / "mute", {}, m.model());
  }
  write_docs(dir, 3);
  ASSERT_EQ(c3("--threads 1 compress" + model_flag() + "docs -o lat", dir).code, 0);
  const auto r = c3("--threads 1 reconstruct -m mute lat -o rec --max-new-tokens 4 --summary s.json", dir);
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_THAT(r.err,
              HasSubstr("3 of 3 spans came back empty, in lat/d0.txt.c3, lat/d1.txt.c3, lat/d2.txt.c3: this model "
                        "does not reconstruct"));
  EXPECT_EQ(json::parse(test::read_bytes(dir / "s.json"))["files_with_empty_spans"].size(), 3u);
}

TEST(CliOutputs, ShardingFromTheEnvironmentIsAWarning) {
  test::TempDir dir;
  write_docs(dir, 8);
  auto r = c3("--threads 1 compress" + model_flag() + "docs -o lat", dir, "env -u OMP_WAIT_POLICY RANK=1 WORLD_SIZE=4");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_THAT(r.err, HasSubstr("[warning] shard 1/4: 2 of 8 files (from RANK/WORLD_SIZE"));
  EXPECT_THAT(r.err, HasSubstr("--shard 0/1"));
  r = c3("--threads 1 compress" + model_flag() + "docs -o lat --shard 0/1", dir,
         "env -u OMP_WAIT_POLICY RANK=1 WORLD_SIZE=4");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(files_under(dir / "lat").size(), 8u);
  r = c3("--threads 1 compress" + model_flag() + "docs -o lat2 --shard 1/2", dir);
  EXPECT_THAT(r.err, HasSubstr("[info] shard 1/2"));
}

}  // namespace
}  // namespace c3
