// Faults injected into the real `c3` binary: kill -9 at random moments, a full disk, damaged
// checkpoints, two runs on one folder, and paths read from files. What each must leave: the
// newest complete state, a one-line error naming the path, and nothing half-written.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <random>
#include <thread>

#include <nlohmann/json.hpp>

#include "c3/infer/latent_file.h"
#include "c3/train/checkpoints.h"
#include "cli_support.h"

namespace c3 {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using test::c3;
using test::count;
using test::files_under;
using test::lines;
using test::TrainFixture;
using testing::HasSubstr;
using testing::Not;

// Runs `c3 ARGS` in `dir` under bash with standard output to `stdout_to` and standard error
// through a pipe, so that a file-size limit (`limit_bytes` > 0, ulimit -f) applies to the files c3
// writes and not to its messages.
test::Result c3_limited(const std::string& args, const fs::path& dir, int64_t limit_bytes,
                        const std::string& stdout_to = "/dev/null") {
  const fs::path script = dir / ".run.sh", err = dir / ".stderr";
  const std::string limit = limit_bytes > 0 ? "ulimit -f " + std::to_string(limit_bytes / 1024) + "; " : "";
  test::write_bytes(script, "set -o pipefail\ncd '" + dir.string() + "'\n{ " + limit + "exec env -u OMP_WAIT_POLICY '" +
                                C3_BINARY + "' " + args + " </dev/null 2>&1 >" + stdout_to + "; } | cat >'" +
                                err.string() + "'\n");
  const int status = std::system(("bash '" + script.string() + "'").c_str());
  test::Result r{WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status), "", test::read_bytes(err)};
  fs::remove(script);
  fs::remove(err);
  return r;
}

// Hidden temporaries (".NAME.tmp-..." folders, "NAME.tmp-..." files) anywhere below `root`.
std::vector<std::string> temporaries_under(const fs::path& root) {
  std::vector<std::string> found;
  for (const auto& e : fs::recursive_directory_iterator(root))
    if (e.path().filename().string().find(".tmp-") != std::string::npos) found.push_back(e.path().string());
  return found;
}

// Every file of a checkpoint but state.json (which records wall-clock time), as bytes.
std::map<std::string, std::string> checkpoint_bytes(const fs::path& dir) {
  std::map<std::string, std::string> out;
  for (const auto& name : files_under(dir))
    if (name != "training_state/state.json") out[name] = test::read_bytes(dir / name);
  return out;
}

void flip_a_byte(const fs::path& file, int64_t from_end) {
  std::string bytes = test::read_bytes(file);
  bytes[bytes.size() - static_cast<size_t>(from_end)] ^= 0x5a;
  test::write_bytes(file, bytes);
}

TEST(CliFaults, AResumedRunKeepsSavingAfterRotationDeletesTheCheckpointItResumedFrom) {
  TrainFixture f;
  const std::string keep = " --set train.save_every=3 --set train.keep_checkpoints=2";
  ASSERT_EQ(c3(f.args("run", 6) + keep, f.dir).code, 0);
  auto r = c3(f.args("run", 15) + keep, f.dir);
  ASSERT_EQ(r.code, 0) << r.err;  // before the fix: "run/checkpoint-6: cannot copy into run/.checkpoint-15.tmp-..."
  EXPECT_THAT(r.err, HasSubstr("resumed at step 6"));
  EXPECT_FALSE(fs::exists(f.dir / "run" / "checkpoint-6")) << "rotated away while the run went on";
  EXPECT_EQ(list_checkpoints(f.dir / "run"),
            (std::vector<fs::path>{f.dir / "run" / "checkpoint-12", f.dir / "run" / "checkpoint-15"}));
  EXPECT_EQ(test::read_bytes(f.dir / "run" / "checkpoint-15" / "tokenizer.model"),
            test::read_bytes(f.dir / "tok" / "tokenizer.model"));
  // The tokenizer the run trained with, even when model.tokenizer changes or disappears under it.
  EXPECT_EQ(checkpoint_problem(f.dir / "run" / "checkpoint-15"), "");
}

// A long run outlives its temporary folder's contents (a /tmp cleaner such as systemd-tmpfiles):
// the tokenizer it staged there at the start still goes into every checkpoint.
TEST(CliFaults, ARunWhoseTemporaryFolderIsEmptiedKeepsSavingItsTokenizer) {
  TrainFixture f;
  const fs::path temp = f.dir / "private-tmp";
  fs::create_directories(temp);
  const int steps = 40;
  const pid_t pid =
      test::spawn_shell("cd '" + f.dir.path().string() + "' && TMPDIR='" + temp.string() + "' exec '" C3_BINARY "' " +
                        f.args("run", steps) + " --set train.save_every=1 2>stderr.txt");
  ASSERT_TRUE(test::wait_until([&] { return !list_checkpoints(f.dir / "run").empty(); }, std::chrono::milliseconds(2)));
  std::vector<std::string> removed;
  for (const auto& e : fs::directory_iterator(temp))
    removed.push_back(e.path().filename().string()), fs::remove_all(e.path());
  const int code = test::wait_exit(pid);
  const std::string err = test::read_bytes(f.dir / "stderr.txt");
  ASSERT_EQ(code, 0) << err;  // before the fix: "/tmp/c3-staged-...: cannot copy into run/.checkpoint-N.tmp-..."
  EXPECT_FALSE(removed.empty()) << "the run staged its tokenizer in TMPDIR";
  const fs::path last = f.dir / "run" / ("checkpoint-" + std::to_string(steps));
  EXPECT_EQ(test::read_bytes(last / "tokenizer.model"), test::read_bytes(f.dir / "tok" / "tokenizer.model"));
  EXPECT_EQ(checkpoint_problem(last), "");
}

// kill -9 at random moments (most of them inside a checkpoint write: one is saved every step),
// each rerun resuming from the newest complete checkpoint; the end equals a run never interrupted.
TEST(CliFaults, KillNineAtRandomMomentsThenResumingEndsBitIdenticalToAnUninterruptedRun) {
  TrainFixture f;
  const int steps = 30;
  const std::string every_step = " --set train.save_every=1 --set train.keep_checkpoints=3";
  auto r = c3(f.args("straight", steps) + every_step, f.dir);
  ASSERT_EQ(r.code, 0) << r.err;
  std::mt19937 rng(20261130);
  int kills = 0, inside_a_save = 0;
  for (int attempt = 0; attempt < 10; ++attempt) {
    const auto before = list_checkpoints(f.dir / "killed");
    const std::string err_file = "stderr-" + std::to_string(attempt) + ".txt";
    const pid_t pid = test::spawn_shell("cd '" + f.dir.path().string() + "' && exec '" C3_BINARY "' " +
                                        f.args("killed", steps) + every_step + " 2>" + err_file);
    // Wait until it has saved a new checkpoint, then kill it at a random moment after that.
    const bool saved_one =
        test::wait_until([&] { return list_checkpoints(f.dir / "killed") != before; }, std::chrono::milliseconds(2));
    std::this_thread::sleep_for(std::chrono::microseconds(std::uniform_int_distribution<int>(0, 120000)(rng)));
    kill(pid, SIGKILL);
    const int code = test::wait_exit(pid);
    const std::string err = test::read_bytes(f.dir / err_file);
    if (!before.empty()) {
      const std::string step = before.back().filename().string().substr(std::string("checkpoint-").size());
      EXPECT_THAT(err, HasSubstr("resumed at step " + step)) << "attempt " << attempt;
    }
    if (code == 0) break;  // it finished before the kill
    ASSERT_EQ(code, 128 + SIGKILL) << err;
    ASSERT_TRUE(saved_one) << err;
    ++kills;
    inside_a_save += temporaries_under(f.dir / "killed").empty() ? 0 : 1;
  }
  std::printf("killed %d times, %d of them inside a checkpoint save\n", kills, inside_a_save);
  EXPECT_GE(kills, 5);
  EXPECT_GE(inside_a_save, 1) << "no kill landed inside a checkpoint write";
  r = c3(f.args("killed", steps) + every_step, f.dir);
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_TRUE(temporaries_under(f.dir / "killed").empty());
  const std::string last = "checkpoint-" + std::to_string(steps);
  const auto straight = checkpoint_bytes(f.dir / "straight" / last), killed = checkpoint_bytes(f.dir / "killed" / last);
  ASSERT_GT(straight.size(), 4u);
  for (const auto& [name, bytes] : straight) EXPECT_TRUE(killed.count(name) && killed.at(name) == bytes) << name;
  EXPECT_EQ(straight.size(), killed.size());
}

TEST(CliFaults, AFullDiskDuringACheckpointSaveFailsNamingThePathAndKeepsThePreviousCheckpoint) {
  TrainFixture f;
  ASSERT_EQ(c3(f.args("run", 2) + " --set train.save_every=1", f.dir).code, 0);
  const auto before = checkpoint_bytes(f.dir / "run" / "checkpoint-2");
  auto r = c3_limited(f.args("run", 4) + " --set train.save_every=1", f.dir.path(), 64 << 10);
  EXPECT_EQ(r.code, 1) << r.err;
  EXPECT_THAT(r.err, HasSubstr("File too large"));
  EXPECT_THAT(r.err, HasSubstr("checkpoint-3"));
  EXPECT_EQ(count(r.err, "[error]"), 1) << r.err;
  EXPECT_EQ(list_checkpoints(f.dir / "run"),
            (std::vector<fs::path>{f.dir / "run" / "checkpoint-1", f.dir / "run" / "checkpoint-2"}));
  EXPECT_EQ(checkpoint_bytes(f.dir / "run" / "checkpoint-2"), before);
  EXPECT_EQ(checkpoint_problem(f.dir / "run" / "checkpoint-2"), "");
  EXPECT_TRUE(temporaries_under(f.dir / "run").empty());
  // With room again, the same command carries on from step 2.
  r = c3(f.args("run", 4) + " --set train.save_every=1", f.dir);
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_THAT(r.err, HasSubstr("resumed at step 2"));
}

TEST(CliFaults, AFullDiskDuringCompressEvalOrOnStdoutFailsNamingThePathAndKeepsFinishedOutputs) {
  const auto& trained = test::trained_model();
  test::TempDir dir;
  fs::create_directories(dir / "docs");
  for (size_t i = 0; i < trained.texts.size(); ++i)
    test::write_bytes(dir / "docs" / ("doc" + std::to_string(i) + ".txt"), trained.texts[i]);
  const std::string compress = "--threads 1 compress -m '" + trained.model() + "' docs -o latents";
  ASSERT_EQ(c3(compress, dir).code, 0);
  std::map<std::string, std::string> finished;
  for (const auto& name : files_under(dir / "latents")) finished[name] = test::read_bytes(dir / "latents" / name);
  auto r = c3_limited(compress + " --force", dir.path(), 1024);
  EXPECT_EQ(r.code, 1) << r.err;
  EXPECT_THAT(r.err, HasSubstr("latents/doc0.txt.c3"));
  EXPECT_THAT(r.err, HasSubstr("File too large"));
  for (const auto& [name, bytes] : finished) EXPECT_EQ(test::read_bytes(dir / "latents" / name), bytes) << name;
  EXPECT_TRUE(temporaries_under(dir / "latents").empty());

  // eval: its journal or its outputs cannot be written; the rerun with room finishes the job.
  test::write_jsonl(dir / "pages.jsonl", trained.texts);
  const std::string eval =
      "--threads 1 eval -m '" + trained.model() + "' pages.jsonl -o eval --min-tokens 1 --batch-size 2";
  r = c3_limited(eval, dir.path(), 2048);
  EXPECT_EQ(r.code, 1) << r.err;
  EXPECT_THAT(r.err, HasSubstr("eval/"));
  EXPECT_THAT(r.err, HasSubstr("File too large"));
  EXPECT_FALSE(fs::exists(dir / "eval" / "summary.json"));
  EXPECT_TRUE(temporaries_under(dir / "eval").empty());
  r = c3(eval, dir);
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(json::parse(test::read_bytes(dir / "eval" / "summary.json"))["conditions"]["none"]["overall"]["pages"],
            trained.texts.size());

  // Results on a full standard output are a failure, not exit 0.
  test::write_bytes(dir / "pairs.jsonl", json{{"reference", "a b c"}, {"prediction", "a b d"}}.dump() + "\n");
  for (const std::string& args :
       {"tokenize --tokenizer '" + trained.model() + "' docs/doc0.txt",
        "reconstruct -m '" + trained.model() + "' latents/doc0.txt.c3", std::string("eval --score pairs.jsonl")}) {
    r = c3_limited(args, dir.path(), 0, "/dev/full");
    EXPECT_EQ(r.code, 1) << args << "\n" << r.err;
    EXPECT_THAT(r.err, HasSubstr("standard output: write failed: No space left on device")) << args;
  }
}

TEST(CliFaults, ADamagedNewestCheckpointIsSetAsideAndTheRunResumesFromTheIntactOneBefore) {
  TrainFixture f;
  const std::string every2 = " --set train.save_every=2 --set train.keep_checkpoints=10";
  ASSERT_EQ(c3(f.args("run", 4) + every2, f.dir).code, 0);
  const fs::path run = f.dir / "run";
  // A flipped byte in the weights: same size, other contents.
  flip_a_byte(run / "checkpoint-4" / "model.safetensors", 3);
  EXPECT_THAT(checkpoint_problem(run / "checkpoint-4"), HasSubstr("model.safetensors is not what was saved"));
  auto r = c3(f.args("run", 6) + every2, f.dir);
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_THAT(r.err,
              HasSubstr("checkpoint-4: damaged (model.safetensors is not what was saved (its checksum differs)); "
                        "moved to checkpoint-4.damaged"));
  EXPECT_THAT(r.err, HasSubstr("resumed at step 2"));
  EXPECT_TRUE(fs::exists(run / "checkpoint-4.damaged" / "model.safetensors")) << "kept for inspection";
  EXPECT_EQ(checkpoint_problem(run / "checkpoint-4"), "") << "saved again";
  // A truncated file (a copy cut short).
  const fs::path decoder = run / "checkpoint-6" / "llm1" / "model.safetensors";
  fs::resize_file(decoder, fs::file_size(decoder) / 2);
  r = c3(f.args("run", 8) + every2, f.dir);
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_THAT(r.err, HasSubstr("llm1/model.safetensors holds"));
  EXPECT_THAT(r.err, HasSubstr("resumed at step 4"));
  // A lost state.json, and every checkpoint damaged: an error, and nothing trained from scratch.
  fs::remove(run / "checkpoint-8" / "training_state" / "state.json");
  for (const char* step : {"2", "4", "6"})
    flip_a_byte(run / ("checkpoint-" + std::string(step)) / "llm1" / "model.safetensors", 1);
  const std::string metrics = test::read_bytes(run / "metrics.jsonl");
  r = c3(f.args("run", 10) + every2, f.dir);
  EXPECT_EQ(r.code, 1) << r.err;
  EXPECT_THAT(r.err,
              HasSubstr("checkpoint-8: damaged (no training_state/state.json), and no older checkpoint is intact"));
  EXPECT_EQ(lines(r.err), 1) << r.err;
  EXPECT_EQ(test::read_bytes(run / "metrics.jsonl"), metrics);
  EXPECT_TRUE(fs::exists(run / "checkpoint-8")) << "nothing is moved aside when there is nothing to resume from";
}

TEST(CliFaults, TwoCompressAndReconstructRunsOnOneFolderLeaveOnlyCompleteOutputs) {
  const auto& trained = test::trained_model();
  test::TempDir dir;
  fs::create_directories(dir / "docs");
  for (int copy = 0; copy < 4; ++copy)
    for (size_t i = 0; i < trained.texts.size(); ++i)
      test::write_bytes(dir / "docs" / ("doc" + std::to_string(copy) + "-" + std::to_string(i) + ".txt"),
                        trained.texts[i]);
  const std::string model = " -m '" + trained.model() + "'";
  ASSERT_EQ(c3("--threads 1 compress" + model + " docs -o alone", dir).code, 0);
  for (int round = 0; round < 3; ++round) {
    const std::string cmd = "cd '" + dir.path().string() + "' && exec '" C3_BINARY "' --threads 1 ";
    const std::string force = round > 0 ? " --force" : "";
    const pid_t a = test::spawn_shell(cmd + "compress" + model + " docs -o both" + force + " 2>a.txt");
    const pid_t b = test::spawn_shell(cmd + "compress" + model + " docs -o both" + force + " 2>b.txt");
    EXPECT_EQ(test::wait_exit(a), 0) << test::read_bytes(dir / "a.txt");
    EXPECT_EQ(test::wait_exit(b), 0) << test::read_bytes(dir / "b.txt");
    ASSERT_EQ(files_under(dir / "both"), files_under(dir / "alone")) << "round " << round;
    for (const auto& name : files_under(dir / "alone"))
      EXPECT_TRUE(read_latent_file(dir / "both" / name).latents.equal(read_latent_file(dir / "alone" / name).latents))
          << name;
    const pid_t c = test::spawn_shell(cmd + "reconstruct" + model + " both -o text" + force + " 2>c.txt");
    const pid_t d = test::spawn_shell(cmd + "reconstruct" + model + " both -o text" + force + " 2>d.txt");
    EXPECT_EQ(test::wait_exit(c), 0) << test::read_bytes(dir / "c.txt");
    EXPECT_EQ(test::wait_exit(d), 0) << test::read_bytes(dir / "d.txt");
    for (const auto& name : files_under(dir / "docs"))
      EXPECT_EQ(test::read_bytes(dir / "text" / name), test::read_bytes(dir / "docs" / name)) << name;
    EXPECT_TRUE(temporaries_under(dir / "both").empty() && temporaries_under(dir / "text").empty());
  }
}

// Names read from files (a latent file's source path, page ids, a run's saved output folder) never
// become places c3 writes to.
TEST(CliFaults, NothingReadFromAFileMakesC3WriteOutsideItsOutputFolder) {
  const auto& trained = test::trained_model();
  test::TempDir dir;
  fs::create_directories(dir / "work" / "docs");
  test::write_bytes(dir / "work" / "docs" / "a.txt", trained.texts[0]);
  const std::string model = " -m '" + trained.model() + "'";
  ASSERT_EQ(c3("--threads 1 compress" + model + " docs -o latents", dir / "work").code, 0);
  LatentFile file = read_latent_file(dir / "work" / "latents" / "a.txt.c3");
  file.source_path = "../../escaped.txt";
  write_latent_file(dir / "work" / "latents" / "a.txt.c3", file);
  test::write_bytes(dir / "work" / "pages.jsonl",
                    json{{"id", "../../escaped"}, {"text", trained.texts[0]}}.dump() + "\n");
  auto r = c3("--threads 1 reconstruct" + model + " latents -o text", dir / "work");
  EXPECT_EQ(r.code, 0) << r.err;
  r = c3("--threads 1 eval" + model + " pages.jsonl -o eval --min-tokens 1", dir / "work");
  EXPECT_EQ(r.code, 0) << r.err;
  TrainFixture f;
  ASSERT_EQ(c3(f.args("run", 1), f.dir).code, 0);
  json saved = json::parse(test::read_bytes(f.dir / "run" / "train_config.json"));
  saved["train"]["output"] = (dir / "escaped-run").string();
  test::write_bytes(f.dir / "run" / "train_config.json", saved.dump());
  r = c3("--threads 1 train -o run --steps 2", f.dir);
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_TRUE(fs::exists(f.dir / "run" / "checkpoint-2"));
  EXPECT_EQ(files_under(dir.path()),
            (std::vector<std::string>{
                "work/docs/a.txt", "work/eval/.pages.jsonl.c3-job", "work/eval/.position_curve.svg.c3-job",
                "work/eval/.precision_vs_ratio.svg.c3-job", "work/eval/.report.md.c3-job",
                "work/eval/.summary.json.c3-job", "work/eval/pages.jsonl", "work/eval/position_curve.svg",
                "work/eval/precision_vs_ratio.svg", "work/eval/report.md", "work/eval/summary.json",
                "work/latents/a.txt.c3", "work/pages.jsonl", "work/text/.a.txt.c3-job", "work/text/a.txt"}));
}

}  // namespace
}  // namespace c3
