// Drives the real `c3` binary: exit codes, one-line errors, config priority, outputs.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <fstream>

#include <nlohmann/json.hpp>

#include "c3/infer/codec.h"
#include "c3/infer/latent_file.h"
#include "c3/io/safetensors.h"
#include "c3/model/qwen2_config.h"
#include "c3/tokenizer/tokenizer.h"
#include "cli_support.h"
#include "test_support.h"

namespace c3 {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using test::c3;
using test::count;
using test::files_under;
using test::lines;
using test::trained_model;
using testing::HasSubstr;
using testing::Not;

TEST(Cli, VersionAndHelp) {
  test::TempDir dir;
  auto r = c3("--version", dir);
  EXPECT_EQ(r.code, 0);
  EXPECT_THAT(r.out, HasSubstr("c3 0."));
  EXPECT_THAT(r.out, HasSubstr("LibTorch "));
  EXPECT_THAT(r.out, HasSubstr("CUDA available: "));
  r = c3("--help", dir);
  EXPECT_EQ(r.code, 0);
  EXPECT_THAT(r.out, HasSubstr("info"));
  EXPECT_THAT(r.out, HasSubstr("init"));
  EXPECT_THAT(r.out, HasSubstr("--threads"));
  r = c3("", dir);
  EXPECT_EQ(r.code, 2) << "a subcommand is required";
  r = c3("frobnicate", dir);
  EXPECT_EQ(r.code, 2);
  EXPECT_THAT(r.err, HasSubstr("unknown subcommand 'frobnicate'"));
  EXPECT_EQ(lines(r.err), 1) << r.err;
  r = c3("--threads 1 --log-level debug init --help", dir);
  EXPECT_EQ(r.code, 0);
  EXPECT_THAT(r.out, HasSubstr("(float32|bfloat16|float16)"));
}

TEST(Cli, DumpConfigMergesDefaultsFileSetAndFlagsInThatOrder) {
  test::TempDir dir;
  test::write_bytes(dir / "run.json", R"({"init": {"seed": 5, "preset": "0.5b"}, "runtime": {"threads": 3}})");
  auto r = c3("--config run.json --set init.seed=6 init out --dump-config --threads 2", dir);
  ASSERT_EQ(r.code, 0) << r.err;
  json cfg = json::parse(r.out);
  EXPECT_EQ(cfg["init"]["seed"], 6);           // --set beats the file
  EXPECT_EQ(cfg["init"]["preset"], "0.5b");    // file beats the default
  EXPECT_EQ(cfg["runtime"]["threads"], 2);     // the flag beats the file
  EXPECT_EQ(cfg["init"]["dtype"], "float32");  // default
  EXPECT_FALSE(fs::exists(dir / "out")) << "--dump-config does no work";
  // The dump feeds back in as a config file.
  test::write_bytes(dir / "dumped.json", r.out);
  auto again = c3("--config dumped.json init out --dump-config", dir);
  EXPECT_EQ(json::parse(again.out), cfg);
}

TEST(Cli, ConfigErrorsAreOneLineUsageErrors) {
  test::TempDir dir;
  test::write_bytes(dir / "bad.json", R"({"init": {"sed": 5}})");
  auto r = c3("--config bad.json init out", dir);
  EXPECT_EQ(r.code, 2);
  EXPECT_THAT(r.err, HasSubstr("bad.json"));
  EXPECT_THAT(r.err, HasSubstr("init.sed"));
  EXPECT_EQ(lines(r.err), 1) << r.err;
  r = c3("--set init.seed=x init out", dir);
  EXPECT_EQ(r.code, 2);
  EXPECT_THAT(r.err, HasSubstr("init.seed"));
  r = c3("--device tpu init out", dir);
  EXPECT_EQ(r.code, 2);
  EXPECT_THAT(r.err, HasSubstr("runtime.device"));
  EXPECT_FALSE(fs::exists(dir / "out"));
}

TEST(Cli, InitThenInfo) {
  test::TempDir dir;
  auto r = c3("--log-level warn init --preset tiny --seed 3 --max-shard-bytes 100000 model", dir);
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_TRUE(fs::exists(dir / "model" / "model.safetensors.index.json"));
  r = c3("info --json model", dir);
  ASSERT_EQ(r.code, 0) << r.err;
  json info = json::parse(r.out);
  EXPECT_EQ(info["parameters"], Qwen2Config::preset("tiny").parameter_count());
  EXPECT_EQ(info["model_type"], "qwen2");
  EXPECT_GT(info["files"].size(), 1u);
  r = c3("info model", dir);
  EXPECT_EQ(r.code, 0);
  EXPECT_THAT(r.out, HasSubstr("tied embeddings"));
  EXPECT_THAT(r.out, HasSubstr("memory, train"));
  // An existing output is not overwritten without --force, and nothing half-written appears.
  r = c3("init model", dir);
  EXPECT_EQ(r.code, 1);
  EXPECT_THAT(r.err, HasSubstr("already exists"));
  r = c3("--log-level off init --force --seed 4 model", dir);
  EXPECT_EQ(r.code, 0);
  EXPECT_TRUE(r.err.empty());
  EXPECT_EQ(std::distance(fs::directory_iterator(dir.path()), fs::directory_iterator()), 1) << "no temporaries left";
}

TEST(Cli, BadCheckpointsFailWithOneLineNamingTheFile) {
  test::TempDir dir;
  ASSERT_EQ(c3("init model", dir).code, 0);
  // Truncate the weights: the error names the file, no crash, exit 1.
  const auto weights = dir / "model" / "model.safetensors";
  fs::resize_file(weights, fs::file_size(weights) - 10);
  auto r = c3("info model", dir);
  EXPECT_EQ(r.code, 1);
  EXPECT_THAT(r.err, HasSubstr(weights.filename().string()));
  EXPECT_EQ(lines(r.err), 1) << r.err;
  test::write_bytes(weights, "garbage");
  r = c3("info model", dir);
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(lines(r.err), 1) << r.err;
  r = c3("info does-not-exist", dir);
  EXPECT_EQ(r.code, 1);
  EXPECT_THAT(r.err, HasSubstr("does-not-exist"));
  test::write_bytes(dir / "hf.json", R"({"hidden_size": 64})");
  r = c3("init --model-config hf.json m2", dir);
  EXPECT_EQ(r.code, 1);
  EXPECT_THAT(r.err, HasSubstr("hf.json"));
  EXPECT_EQ(lines(r.err), 1) << r.err;
  EXPECT_FALSE(fs::exists(dir / "m2"));
}

TEST(Cli, ThreadsAndDeviceAreApplied) {
  test::TempDir dir;
  auto r = c3("--threads 1 --device cpu --log-level debug init model", dir);
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_THAT(r.err, HasSubstr("device cpu, 1 threads, OMP_WAIT_POLICY=(unset)"));
  // c3 leaves OpenMP's wait policy to the user (libgomp's default spins, which MKL prefers).
  r = c3("--threads 2 --log-level debug init --force model", dir);
  EXPECT_THAT(r.err, HasSubstr("2 threads, OMP_WAIT_POLICY=(unset)"));
  r = c3("--threads 2 --log-level debug init --force model", dir, "env OMP_WAIT_POLICY=ACTIVE");
  EXPECT_THAT(r.err, HasSubstr("2 threads, OMP_WAIT_POLICY=ACTIVE"));
  r = c3("--threads -1 init model2", dir);
  EXPECT_EQ(r.code, 2);
  EXPECT_THAT(r.err, HasSubstr("--threads"));
}

TEST(Cli, TokenizeEncodesCountsDecodesAndReportsBadInput) {
  test::TempDir dir;
  const std::string tok = "--tokenizer '" C3_TEST_DATA "/qwen2-tokenizer/vocab.json'";
  test::write_bytes(dir / "in.txt", "hello   world");
  auto r = c3("tokenize " + tok + " in.txt", dir);
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out, "14990 256 1879\n");
  r = c3("tokenize " + tok + " - < in.txt", dir);
  EXPECT_EQ(r.out, "14990 256 1879\n") << "stdin";
  r = c3("tokenize " + tok + " --count in.txt", dir);
  EXPECT_EQ(r.out, "3\n");
  r = c3("tokenize " + tok + " --json in.txt", dir);
  EXPECT_EQ(json::parse(r.out), (json{{"ids", {14990, 256, 1879}}, {"count", 3}}));
  test::write_bytes(dir / "ids.txt", " 14990 256\n1879 ");
  r = c3("tokenize " + tok + " --decode ids.txt", dir);
  EXPECT_EQ(r.out, "hello   world");
  test::write_bytes(dir / "bad-ids.txt", "14990 x1");
  r = c3("tokenize " + tok + " --decode bad-ids.txt", dir);
  EXPECT_EQ(r.code, 1);
  EXPECT_THAT(r.err, HasSubstr("bad-ids.txt: 'x1' is not a token id"));
  r = c3("tokenize --tokenizer nowhere in.txt", dir);
  EXPECT_EQ(r.code, 1);
  EXPECT_THAT(r.err, HasSubstr("nowhere"));
  EXPECT_EQ(lines(r.err), 1) << r.err;
  r = c3("tokenize " + tok + " missing.txt", dir);
  EXPECT_EQ(r.code, 1);
  EXPECT_THAT(r.err, HasSubstr("missing.txt"));
  r = c3("tokenize " + tok + " --count --decode in.txt", dir);
  EXPECT_EQ(r.code, 2);
  // --jsonl: one output line per text, in order; a bad line names the file and line.
  test::write_bytes(dir / "texts.jsonl", "{\"text\": \"hello   world\"}\n\n{\"text\": \"\"}\n");
  r = c3("tokenize " + tok + " --jsonl texts.jsonl", dir);
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out, "{\"count\":3,\"ids\":[14990,256,1879]}\n{\"count\":0,\"ids\":[]}\n");
  test::write_bytes(dir / "bad.jsonl", "{\"text\": \"a\"}\n{\"txt\": \"b\"}\n");
  r = c3("tokenize " + tok + " --jsonl bad.jsonl", dir);
  EXPECT_EQ(r.code, 1);
  EXPECT_THAT(r.err, HasSubstr("bad.jsonl:2: expected an object with \"text\""));
  EXPECT_EQ(r.out, "") << "nothing printed for the good first line";
  // --jsonl --decode: {"ids": [...]} per line -> {"text": ...} per line; --add-special-tokens is for encoding.
  test::write_bytes(dir / "ids.jsonl", "{\"ids\": [14990, 256, 1879]}\n{\"ids\": []}\n");
  r = c3("tokenize " + tok + " --jsonl --decode ids.jsonl", dir);
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out, "{\"count\":3,\"text\":\"hello   world\"}\n{\"count\":0,\"text\":\"\"}\n");
  test::write_bytes(dir / "ids.jsonl", "{\"ids\": [14990, -1]}\n");
  r = c3("tokenize " + tok + " --jsonl --decode ids.jsonl", dir);
  EXPECT_EQ(r.code, 1);
  EXPECT_THAT(r.err, HasSubstr("ids.jsonl:1: -1 is not a token id"));
  EXPECT_EQ(c3("tokenize " + tok + " --decode --add-special-tokens in.txt", dir).code, 2);
}

TEST(Cli, TokenizerTrainWritesASentencePieceModelThatTokenizeUses) {
  test::TempDir dir;
  std::string corpus;
  for (int i = 0; i < 200; ++i) corpus += "line " + std::to_string(i) + " of a small training corpus for c3\n";
  test::write_bytes(dir / "corpus.txt", corpus);
  auto r = c3("--log-level warn tokenizer train --input corpus.txt --vocab-size 320 -o spm", dir);
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_TRUE(fs::exists(dir / "spm" / "tokenizer.model"));
  test::write_bytes(dir / "t.txt", "<|im_start|>line 7<|im_end|>");
  r = c3("tokenize --tokenizer spm t.txt", dir);
  ASSERT_EQ(r.code, 0) << r.err;
  test::write_bytes(dir / "ids.txt", r.out);
  r = c3("tokenize --tokenizer spm --decode ids.txt", dir);
  EXPECT_EQ(r.out, "<|im_start|>line 7<|im_end|>");
  r = c3("tokenizer train --input corpus.txt --vocab-size 5 -o spm2", dir);
  EXPECT_EQ(r.code, 2);
  EXPECT_FALSE(fs::exists(dir / "spm2"));
  r = c3("tokenizer train --input corpus.txt --vocab-size 100000 -o spm3", dir);
  EXPECT_EQ(r.code, 1) << "sentencepiece's own error, reported";
  EXPECT_EQ(lines(r.err), 2) << r.err;  // the info line, then the error
  EXPECT_THAT(r.err, HasSubstr("--vocab-size 100000 is more than this text can fill: at most "));
  EXPECT_THAT(r.err, Not(HasSubstr("Internal")));
  EXPECT_FALSE(fs::exists(dir / "spm3"));
  // A folder stands for its text files, as for train --data and compress; several files per flag.
  fs::create_directories(dir / "texts" / "more");
  test::write_bytes(dir / "texts" / "a.txt", corpus);
  test::write_bytes(dir / "texts" / "more" / "b.md", corpus);
  test::write_bytes(dir / "texts" / "skip.bin", "\xff\xfe");
  r = c3("--log-level warn tokenizer train --input texts --vocab-size 320 -o spm4", dir);
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_TRUE(fs::exists(dir / "spm4" / "tokenizer.model"));
  r = c3("--log-level warn tokenizer train --input corpus.txt texts/a.txt --vocab-size 320 -o spm5", dir);
  ASSERT_EQ(r.code, 0) << r.err;
}

TEST(Cli, LogFileReceivesTheLogEvenInAFolderNotYetMade) {
  test::TempDir dir;
  auto r = c3("--log-file run.log init model", dir);
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_THAT(test::read_bytes(dir / "run.log"), HasSubstr("wrote model"));
  r = c3("--log-file logs/job-1/run.log init model2", dir);
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_THAT(test::read_bytes(dir / "logs" / "job-1" / "run.log"), HasSubstr("wrote model2"));
  r = c3("--log-file run.log/inside.log init model3", dir);  // a file where the folder should be
  EXPECT_EQ(r.code, 2);
  EXPECT_THAT(r.err, HasSubstr("run.log/inside.log: cannot open log file"));
  EXPECT_FALSE(fs::exists(dir / "model3"));
}

TEST(Cli, GlobalFlagsMayComeBeforeAndAfterTheSubcommandAndTheLastOneWins) {
  test::TempDir dir;
  auto r = c3("--threads 1 --log-level warn init --threads 2 --log-level error --dump-config model", dir);
  ASSERT_EQ(r.code, 0) << r.err;
  const auto config = json::parse(r.out);
  EXPECT_EQ(config["runtime"]["threads"], 2);
  EXPECT_EQ(config["runtime"]["log_level"], "error");
  r = c3("--log-level off init --seed 1 --seed 2 model", dir);
  EXPECT_EQ(r.code, 0) << r.err;
}

using test::TrainFixture;

TEST(CliTrain, PathsInAConfigFileAreTakenFromItsFolderAndMissingInputsNameTheKey) {
  TrainFixture f;
  const auto& dir = f.dir;
  fs::create_directories(dir / "configs");
  test::write_bytes(dir / "configs" / "run.json", R"({"model": {"encoder": "preset:tiny", "decoder": "preset:tiny",
      "tokenizer": "../tok"}, "data": {"train": ["../train.jsonl", "/abs/data.jsonl"], "validation": ""},
      "train": {"output": "../out"}})");
  fs::create_directories(dir / "elsewhere");
  auto r = c3("--config ../configs/run.json train --dump-config", dir / "elsewhere");
  ASSERT_EQ(r.code, 0) << r.err;
  auto config = json::parse(r.out);
  EXPECT_EQ(config["model"]["tokenizer"], "../tok") << "the config's folder, seen from the working directory";
  EXPECT_EQ(config["model"]["encoder"], "preset:tiny") << "not a path";
  EXPECT_EQ(config["data"]["train"], json::array({"../train.jsonl", "/abs/data.jsonl"}));
  EXPECT_EQ(config["data"]["validation"], "");
  EXPECT_EQ(config["train"]["output"], "../out");
  r = c3("--config configs/run.json train --dump-config", dir);
  EXPECT_EQ(json::parse(r.out)["model"]["tokenizer"], "tok");
  // A missing input is named with its key and where the key was set, before anything runs.
  r = c3("--threads 1 --config configs/run.json train --steps 1", dir);
  EXPECT_EQ(r.code, 1);
  EXPECT_THAT(r.err, HasSubstr("/abs/data.jsonl: no such file or folder (data.train, from configs/run.json)"));
  EXPECT_EQ(lines(r.err), 1) << r.err;
  EXPECT_FALSE(fs::exists(dir / "out"));
  r = c3("--threads 1 --config configs/run.json train --steps 1 --data train.jsonl --tokenizer tok2", dir);
  EXPECT_THAT(r.err, HasSubstr("tok2: no such file or folder (model.tokenizer, from --tokenizer)"));
  r =
      c3("--threads 1 --config configs/run.json train --steps 1 --data train.jsonl --set "
         "model.encoder=pretrained/Qwen2.5-1.5B",
         dir);
  EXPECT_THAT(r.err, HasSubstr("pretrained/Qwen2.5-1.5B: no such file or folder (model.encoder, from --set)"));
  EXPECT_THAT(r.err, Not(HasSubstr("model.tokenizer is required")));
}

TEST(CliTrain, TrainsSavesTheReleasedLayoutAndLogsJson) {
  TrainFixture f;
  auto r = c3(f.args("out", 3) + " --set train.save_every=2 --set train.keep_checkpoints=1", f.dir);
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out, "") << "stdout stays clean";
  EXPECT_EQ(r.err.find('\r'), std::string::npos) << "no status line in a pipe";
  EXPECT_THAT(r.err, HasSubstr("step 3/3"));
  EXPECT_FALSE(fs::exists(f.dir / "out" / "checkpoint-2")) << "keep_checkpoints=1 pruned it";
  const fs::path ckpt = f.dir / "out" / "checkpoint-3";
  EXPECT_TRUE(fs::exists(ckpt / "model.safetensors"));
  EXPECT_TRUE(fs::exists(ckpt / "llm1" / "model.safetensors"));
  EXPECT_TRUE(fs::exists(ckpt / "tokenizer.model"));
  EXPECT_TRUE(fs::exists(ckpt / "training_state" / "optimizer.safetensors"));
  std::ifstream metrics(f.dir / "out" / "metrics.jsonl");
  std::string line;
  int records = 0;
  while (std::getline(metrics, line)) {
    const auto j = json::parse(line);
    EXPECT_TRUE(j.contains("loss") && j.contains("lr") && j.contains("grad_norm") && j.contains("tokens_per_second"));
    ++records;
  }
  EXPECT_EQ(records, 3);
  r = c3("info out/checkpoint-3", f.dir);
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("llm1"));
  // The longest text it was trained on (data.max_tokens), which compress and eval cut texts to.
  EXPECT_EQ(json::parse(test::read_bytes(ckpt / "config.json"))["c3_max_text_tokens"], 1024);
  r = c3(f.args("short", 1) + " --set data.min_tokens=4 --set data.max_tokens=12", f.dir);
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_THAT(c3("info short", f.dir).out, HasSubstr("texts of up to 12 tokens"));
  test::write_bytes(f.dir / "long.txt", test::random_texts(1, 60, 3)[0]);
  ASSERT_EQ(c3("--threads 1 compress -m short long.txt -o long.c3", f.dir).code, 0);
  for (const auto& t : json::parse(c3("info --json long.c3", f.dir).out)["span_tokens"]) EXPECT_LE(t.get<int>(), 12);
  // The run's folder holds the resolved config, which reproduces the run.
  EXPECT_EQ(json::parse(test::read_bytes(f.dir / "out" / "train_config.json"))["model"]["latent_tokens"], 4);
  r = c3("--config out/train_config.json train --dump-config", f.dir);
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(json::parse(r.out)["train"]["steps"], 3);
}

// data.tasks from the command line (a JSON object) reaches the trainer, is saved with the run, and
// bad weights or names are one-line errors.
TEST(CliTrain, TasksAreAJsonObjectOfWeights) {
  TrainFixture f;
  const std::string pieces = " --set data.min_tokens=4 --set data.max_tokens=6 --set data.context_spans=2";
  auto r = c3(f.args("mixed", 3) + pieces + " --set 'data.tasks={\"reconstruct\": 1, \"continue\": 1}'", f.dir);
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_THAT(r.err, HasSubstr("tasks: reconstruct 0.50, continue 0.50"));
  std::ifstream metrics(f.dir / "mixed" / "metrics.jsonl");
  std::string line;
  bool per_task = false;
  while (std::getline(metrics, line)) per_task |= json::parse(line).contains("loss_continue");
  EXPECT_TRUE(per_task);
  EXPECT_EQ(json::parse(test::read_bytes(f.dir / "mixed" / "train_config.json"))["data"]["tasks"]["continue"], 1);
  r = c3(f.args("bad", 1) + pieces + " --set 'data.tasks={\"continue\": \"lots\"}'", f.dir);
  EXPECT_NE(r.code, 0);
  EXPECT_THAT(r.err, HasSubstr("the weight of continue is not a number"));
  r = c3(f.args("bad", 1) + " --set 'data.tasks={\"summarise\": 1}'", f.dir);
  EXPECT_THAT(r.err, HasSubstr("unknown task 'summarise'"));
  EXPECT_FALSE(fs::exists(f.dir / "bad"));
}

TEST(CliTrain, SigtermFinishesTheStepSavesAndExits143ThenResumes) {
  TrainFixture f;
  const std::string command =
      std::string("exec '") + C3_BINARY + "' " + f.args("run", 100000) + " --set train.save_every=100000 2>stderr.txt";
  const pid_t pid = test::spawn_shell("cd '" + f.dir.path().string() + "' && " + command);
  // Wait until training is under way (a few steps logged), then ask it to stop.
  test::wait_until([&] { return lines(test::read_bytes(f.dir / "run" / "metrics.jsonl")) >= 3; },
                   std::chrono::milliseconds(20));
  ASSERT_EQ(kill(pid, SIGTERM), 0);
  EXPECT_EQ(test::wait_exit(pid), 128 + SIGTERM) << test::read_bytes(f.dir / "stderr.txt");
  const int logged = lines(test::read_bytes(f.dir / "run" / "metrics.jsonl"));
  const fs::path saved = f.dir / "run" / ("checkpoint-" + std::to_string(logged));
  EXPECT_TRUE(fs::exists(saved / "training_state" / "state.json")) << "saved at the step it stopped at";
  EXPECT_THAT(test::read_bytes(f.dir / "stderr.txt"), HasSubstr("stopped by signal 15"));
  // As if saved by an older c3 that had no eval.* and no optim.zero_stage: not differences to report.
  json state = json::parse(test::read_bytes(saved / "training_state" / "state.json"));
  state["config"].erase("eval");
  state["config"]["optim"].erase("zero_stage");
  test::write_bytes(saved / "training_state" / "state.json", state.dump(2));
  // The same command resumes from there.
  auto r = c3(f.args("run", logged + 2), f.dir);
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_THAT(r.err, HasSubstr("resumed at step " + std::to_string(logged)));
  // What changed is named, and only that (no other command's settings; train.save_every, not given
  // again, is the run's own from its train_config.json).
  EXPECT_THAT(r.err, HasSubstr("config keys that differ from the checkpoint's: train.steps\n"));
  EXPECT_EQ(lines(test::read_bytes(f.dir / "run" / "metrics.jsonl")), logged + 2);
}

TEST(CliTrain, OutputAloneCarriesOnARunAndARerunOfAFinishedRunAddsNothing) {
  TrainFixture f;
  auto r = c3(f.args("run", 2) + " --set train.eval_every=2 --set optim.warmup_steps=5", f.dir);
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_THAT(r.err, HasSubstr("the warmup (5 steps) is as long as the run (2 steps)"));
  const fs::path metrics = f.dir / "run" / "metrics.jsonl";
  const std::string first = test::read_bytes(metrics);
  EXPECT_EQ(count(first, "\"validation\""), 2) << "steps 0 and 2";
  // The same run again, or only its folder: nothing trained, nothing logged twice.
  for (const std::string& args : {f.args("run", 2) + " --set train.eval_every=2 --set optim.warmup_steps=5",
                                  std::string("--threads 1 train -o run")}) {
    r = c3(args, f.dir);
    ASSERT_EQ(r.code, 0) << args << "\n" << r.err;
    EXPECT_THAT(r.err, HasSubstr("the run is finished")) << args;
    EXPECT_THAT(r.err, Not(HasSubstr("differ from the checkpoint"))) << args;
    EXPECT_EQ(test::read_bytes(metrics), first) << args;
  }
  // Its folder and what changes: the rest comes from run/train_config.json. (A checkpoint of an
  // older c3 recorded paths as given, relative: the same path, not a difference.)
  const fs::path state = f.dir / "run" / "checkpoint-2" / "training_state" / "state.json";
  json saved = json::parse(test::read_bytes(state));
  ASSERT_TRUE(fs::path(saved["config"]["data"]["train"][0].get<std::string>()).is_absolute());
  saved["config"]["data"]["train"] = json::array({"train.jsonl"});
  test::write_bytes(state, saved.dump());
  r = c3("--threads 1 train -o run --steps 3 --progress-every 0.000001", f.dir);
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_THAT(r.err, HasSubstr("resumed at step 2 of 3"));
  EXPECT_THAT(r.err, HasSubstr("step 3/3 | loss")) << "a progress line in a pipe, every --progress-every seconds";
  EXPECT_EQ(r.err.find('\r'), std::string::npos);
  EXPECT_THAT(r.err, HasSubstr("differ from the checkpoint's: train.steps\n"));
  EXPECT_TRUE(fs::exists(f.dir / "run" / "checkpoint-3"));
  EXPECT_EQ(json::parse(test::read_bytes(f.dir / "run" / "train_config.json"))["train"]["steps"], 3);
  r = c3("--threads 1 train -o run --dump-config", f.dir);
  EXPECT_EQ(json::parse(r.out)["model"]["latent_tokens"], 4) << "--dump-config shows what a resume would use";
  // A warm start takes N from the checkpoint unless it is set.
  r =
      c3("--threads 1 train --checkpoint run --data train.jsonl -o warm --steps 1 --batch-size 4 --grad-accum 1"
         " --set train.eval_every=0 --set data.validation_samples=2",
         f.dir);
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_THAT(r.err, HasSubstr("run is a training run: using its newest checkpoint, run/checkpoint-3"));
  EXPECT_EQ(count(r.err, "is a training run"), 1) << r.err;
  EXPECT_EQ(json::parse(test::read_bytes(f.dir / "warm" / "checkpoint-1" / "config.json"))["latent_token_len"], 4);
  EXPECT_EQ(json::parse(test::read_bytes(f.dir / "warm" / "train_config.json"))["model"]["latent_tokens"], 4);
  r = c3("--threads 1 train --checkpoint run --data train.jsonl -o warm8 --steps 1 --latent-tokens 8", f.dir);
  EXPECT_EQ(r.code, 2);
  EXPECT_THAT(r.err, HasSubstr("the checkpoint has 4 latent tokens but the config asks for 8"));
}

TEST(CliTrain, MaxMinutesEndsTheRunSavedWithTheScheduleDecayedOverTheTime) {
  TrainFixture f;
  // 100000 steps would take an hour; 1.8 s of training steps ends the run. (At 0.6 s a loaded
  // machine spent a fifth of it on the first two steps, and the third's learning rate had decayed.)
  const std::string args = f.args("run", 100000) + " --max-minutes 0.03 --lr 1e-3 --set optim.warmup_steps=2";
  auto r = c3(args, f.dir);
  ASSERT_EQ(r.code, 0) << r.err;
  std::vector<double> lrs;
  std::istringstream metrics(test::read_bytes(f.dir / "run" / "metrics.jsonl"));
  for (std::string line; std::getline(metrics, line);)
    if (json::parse(line)["type"] == "train") lrs.push_back(json::parse(line)["lr"].get<double>());
  const auto steps = static_cast<int64_t>(lrs.size());
  ASSERT_GE(steps, 3);
  ASSERT_LT(steps, 100000);
  EXPECT_THAT(r.err, HasSubstr("(train.max_minutes 0.03, train.max_cpu_minutes 0) was reached at step " +
                               std::to_string(steps)));
  EXPECT_TRUE(fs::exists(f.dir / "run" / ("checkpoint-" + std::to_string(steps)) / "training_state" / "state.json"));
  // The warmup in steps (0, then half the peak; logged after each step), then cosine over the time,
  // not over 100000 steps: from the peak to near 0 at the end.
  EXPECT_DOUBLE_EQ(lrs[0], 0);
  EXPECT_DOUBLE_EQ(lrs[1], 0.5e-3);
  EXPECT_GT(lrs[2], 0.9e-3);
  EXPECT_LT(lrs.back(), 0.1e-3) << "the learning rate decayed with the minutes";
  for (size_t i = 3; i < lrs.size(); ++i) EXPECT_LE(lrs[i], lrs[i - 1]) << "step " << i + 1;
  // The time is spent: the same command again trains nothing more.
  r = c3(args, f.dir);
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_THAT(r.err, HasSubstr("resumed at step " + std::to_string(steps)));
  EXPECT_EQ(lines(test::read_bytes(f.dir / "run" / "metrics.jsonl")), steps);
  EXPECT_EQ(c3(f.args("bad", 10) + " --max-minutes -1", f.dir).code, 2);
  // A run the budget ends between log lines still records its last step.
  r = c3(f.args("sparse", 100000) + " --max-minutes 0.005 --set train.log_every=100000", f.dir);
  ASSERT_EQ(r.code, 0) << r.err;
  const std::string reached = "was reached at step ";
  const auto at = r.err.find(reached);
  ASSERT_NE(at, std::string::npos) << r.err;
  const int64_t last = std::stoll(r.err.substr(at + reached.size()));
  const json record = json::parse(test::read_bytes(f.dir / "sparse" / "metrics.jsonl"));
  EXPECT_EQ(record["step"], last) << "one record: the last step's";
}

TEST(CliTrain, MaxCpuMinutesEndsTheRunOnTheProcessCpuTimeRecordedInMetricsAndState) {
  TrainFixture f;
  // 10^7 steps would take days; the budget ends the run, and the ETA says so.
  const std::string args = f.args("run", 10000000) + " --set train.max_cpu_minutes=0.01";
  auto r = c3(args, f.dir);
  ASSERT_EQ(r.code, 0) << r.err;
  std::vector<double> cpu;
  std::istringstream metrics(test::read_bytes(f.dir / "run" / "metrics.jsonl"));
  for (std::string line; std::getline(metrics, line);)
    if (json::parse(line)["type"] == "train") cpu.push_back(json::parse(line)["cpu_seconds"].get<double>());
  const auto steps = static_cast<int64_t>(cpu.size());
  ASSERT_GE(steps, 2);
  ASSERT_LT(steps, 100000);
  const std::string last_eta = r.err.substr(r.err.rfind("ETA ") + 4, 8);
  EXPECT_EQ(std::count(last_eta.begin(), last_eta.end(), ':'), 1) << "under an hour: " << last_eta;
  EXPECT_THAT(r.err, HasSubstr("train.max_cpu_minutes 0.01) was reached at step " + std::to_string(steps)));
  for (size_t i = 1; i < cpu.size(); ++i) EXPECT_GT(cpu[i], cpu[i - 1]) << "step " << i + 1;
  EXPECT_GE(cpu.back(), 0.6);
  EXPECT_LT(cpu[cpu.size() - 2], 0.6) << "the run stopped at the first step past the budget";
  const json state = json::parse(
      test::read_bytes(f.dir / "run" / ("checkpoint-" + std::to_string(steps)) / "training_state" / "state.json"));
  EXPECT_DOUBLE_EQ(state["cpu_seconds"].get<double>(), cpu.back());
  // The CPU time is carried over a resume: nothing more to train.
  r = c3(args, f.dir);
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(lines(test::read_bytes(f.dir / "run" / "metrics.jsonl")), steps);
  EXPECT_EQ(c3(f.args("bad", 10) + " --set train.max_cpu_minutes=-1", f.dir).code, 2);
}

TEST(CliTrain, DryRunNeedsNeitherWeightsNorATokenizer) {
  test::TempDir dir;
  const fs::path configs = fs::path(C3_TEST_DATA) / ".." / ".." / "configs";
  // The paper config names pretrained/Qwen2.5-1.5B and -3B, which are not here: their geometry is known.
  auto r = c3("--config '" + (configs / "paper-c3-32.json").string() + "' train --dry-run", dir);
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("encoder 1.54B + decoder 3.09B parameters (N = 32)"));
  EXPECT_THAT(r.err, HasSubstr("assuming the geometry of preset:1.5b (Qwen2.5-1.5B)"));
  EXPECT_THAT(r.err, HasSubstr("assuming the geometry of preset:3b (Qwen2.5-3B)"));
  // A folder holding only config.json is enough; so is preset:NAME, with no tokenizer anywhere.
  fs::create_directories(dir / "enc");
  json hf = Qwen2Config::preset("0.5b").to_json();
  hf["num_hidden_layers"] = 12;
  test::write_bytes(dir / "enc" / "config.json", hf.dump());
  r = c3("train --dry-run --encoder enc --decoder preset:0.5b --data nothing.jsonl -o out --latent-tokens 64", dir);
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("(N = 64)"));
  EXPECT_THAT(r.err, Not(HasSubstr("[warning]")));
  EXPECT_FALSE(fs::exists(dir / "out"));
  r = c3("train --dry-run --encoder missing --decoder preset:0.5b --data x.jsonl -o out", dir);
  EXPECT_EQ(r.code, 2);
  EXPECT_THAT(r.err,
              HasSubstr("model.encoder 'missing' is neither a checkpoint folder, a config.json file nor preset:NAME"));
}

TEST(CliTrain, ShippedConfigsAreValid) {
  test::TempDir dir;
  const fs::path configs = fs::path(C3_TEST_DATA) / ".." / ".." / "configs";
  int checked = 0;
  for (const auto& entry : fs::directory_iterator(configs)) {
    const std::string name = entry.path().filename().string();
    if (entry.path().extension() != ".json" || name == "example.json") continue;
    // Recipe files are overlays on a paper config.
    const std::string base =
        name.rfind("recipe-", 0) == 0 ? "--config '" + (configs / "paper-c3-32.json").string() + "' " : "";
    const auto r = c3(base + "--config '" + entry.path().string() + "' train --dump-config", dir);
    EXPECT_EQ(r.code, 0) << name << ": " << r.err;
    const auto j = json::parse(r.out);
    EXPECT_TRUE(j.contains("optim") && j.contains("data") && j.contains("model")) << name;
    ++checked;
  }
  EXPECT_GE(checked, 6);
  const auto paper =
      json::parse(c3("--config '" + (configs / "paper-c3-32.json").string() + "' train --dump-config", dir).out);
  EXPECT_EQ(paper["optim"]["lr"], 1e-5);
  EXPECT_EQ(paper["optim"]["schedule"], "cosine");
  EXPECT_EQ(paper["optim"]["warmup_ratio"], 0.01);
  EXPECT_EQ(paper["train"]["batch_size"], 2);
  EXPECT_EQ(paper["train"]["grad_accum"], 16);
  EXPECT_EQ(paper["model"]["latent_tokens"], 32);
  // Its paths are the project's folders, whatever the working directory.
  EXPECT_EQ(paper["model"]["encoder"], (configs / ".." / "pretrained" / "Qwen2.5-1.5B").lexically_normal().string());
  EXPECT_EQ(paper["train"]["output"], (configs / ".." / "runs" / "c3-paper-32").lexically_normal().string());
}

TEST(CliTrain, BadInputIsOneLineAndLeavesNoOutput) {
  TrainFixture f;
  test::write_bytes(f.dir / "broken.jsonl", "{\"text\": \"fine\"}\n{\"text\": \n");
  test::write_bytes(f.dir / "empty.jsonl", "");
  const std::string base =
      "--threads 1 train --encoder preset:tiny --decoder preset:tiny --tokenizer tok -o out --steps 2 ";
  struct Case {
    std::string args, message;
    int code;
  };
  const std::vector<Case> cases{
      {base + "--data missing.jsonl", "missing.jsonl: no such file", 1},
      {base + "--data broken.jsonl", "broken.jsonl:2: not valid JSON", 1},
      {base + "--data empty.jsonl", "empty.jsonl: no training samples", 1},
      {base + "--data train.jsonl --lr -3", "optim.lr must be >= 0", 2},
      {base + "--data train.jsonl --set train.dist_backend=nccl", "train.dist_backend nccl needs a CUDA device", 2},
      {base + "--data train.jsonl --set train.dist_backend=mpi", "train.dist_backend mpi: choose auto, nccl or gloo",
       2},
      {base + "--data train.jsonl --batch-size abc", "must be an integer", 2},
      {base + "--data train.jsonl --set data.max_length=50", "leaves no room for text", 2},
      {base + "--data train.jsonl --set optim.frozen='[\"decoder\",\"encoder\",\"query\",\"projector\"]'",
       "nothing to train", 2},
      {base + "--data train.jsonl --set optim.schedule=step", "optim.schedule", 2},
      {"--threads 1 train --checkpoint tok --data train.jsonl -o out", "tok: not a C3 model (no config.json", 1},
      {"--threads 1 train --data train.jsonl -o out", "model.checkpoint", 2},
  };
  for (const auto& c : cases) {
    const auto r = c3(c.args, f.dir);
    EXPECT_EQ(r.code, c.code) << c.args << "\n" << r.err;
    EXPECT_THAT(r.err, HasSubstr(c.message)) << c.args;
    EXPECT_EQ(count(r.err, "[error]"), 1) << r.err;
    EXPECT_EQ(lines(r.err.substr(r.err.find("[error]"))), 1) << "the error is one line, and the last";
    EXPECT_FALSE(fs::exists(f.dir / "out")) << c.args;
  }
}

TEST(CliCompress, FolderRoundTripIsExactAndBadFilesAreReported) {
  const auto& m = trained_model();
  test::TempDir dir;
  fs::create_directories(dir / "docs" / "sub");
  for (size_t i = 0; i < m.texts.size(); ++i)
    test::write_bytes(dir / "docs" / (i % 3 ? "" : "sub") / ("d" + std::to_string(i) + ".txt"), m.texts[i] + "\n");
  test::write_bytes(dir / "docs" / "broken.txt", "\xff\xfe not utf-8");
  test::write_bytes(dir / "docs" / "blank.md", " \n\n");
  test::write_bytes(dir / "docs" / "data.json", "{}");  // not included by default
  auto r = c3("--threads 1 compress -m '" + m.model() + "' docs -o lat --summary sum.json", dir);
  EXPECT_EQ(r.code, 1) << "two files failed";
  EXPECT_THAT(r.err, HasSubstr("docs/broken.txt: not valid UTF-8"));
  EXPECT_THAT(r.err, HasSubstr("docs/blank.md: empty"));
  const auto summary = json::parse(test::read_bytes(dir / "sum.json"));
  EXPECT_EQ(summary["written"], 12);
  EXPECT_EQ(summary["failed"].size(), 2u);
  EXPECT_GT(summary["compression_ratio"].get<double>(), 3.0);
  std::vector<std::string> expected;
  for (size_t i = 0; i < m.texts.size(); ++i)
    expected.push_back((i % 3 ? "" : "sub/") + ("d" + std::to_string(i)) + ".txt.c3");
  std::sort(expected.begin(), expected.end());
  EXPECT_EQ(files_under(dir / "lat"), expected) << "the tree is mirrored, nothing else is written";
  r = c3("--threads 1 reconstruct -m '" + m.model() + "' lat -o rec", dir);
  ASSERT_EQ(r.code, 0) << r.err;
  for (size_t i = 0; i < m.texts.size(); ++i) {
    const std::string rel = (i % 3 ? "" : "sub/") + ("d" + std::to_string(i)) + ".txt";
    EXPECT_EQ(test::read_bytes(dir / "rec" / rel), m.texts[i] + "\n") << rel;
  }
  // A second run has nothing left to do.
  r = c3("--threads 1 reconstruct -m '" + m.model() + "' lat -o rec --summary again.json", dir);
  EXPECT_EQ(json::parse(test::read_bytes(dir / "again.json"))["skipped"], 12);
  // --fail-fast stops at the first bad file (the folder is listed in sorted order: blank.md first).
  r = c3("--threads 1 compress -m '" + m.model() + "' docs -o fast --fail-fast", dir);
  EXPECT_EQ(r.code, 1);
  EXPECT_THAT(r.err, HasSubstr("blank.md: empty"));
  EXPECT_THAT(r.err, HasSubstr("--fail-fast"));
  EXPECT_FALSE(fs::exists(dir / "fast")) << "nothing after the failure";
}

// The string API a C++ user calls (C3Codec::encode/decode) is the path the commands take: the same
// spans and latents as `c3 compress` writes, and the texts back byte for byte from a trained model.
TEST(CodecApi, StringsRoundTripAndTheLatentsAreThoseCompressWrites) {
  const auto& m = trained_model();
  test::TempDir dir;
  fs::create_directories(dir / "docs");
  std::vector<std::string> texts;
  for (size_t i = 0; i < 4; ++i) {
    texts.push_back(m.texts[i] + "\n");
    test::write_bytes(dir / "docs" / ("d" + std::to_string(i) + ".txt"), texts.back());
  }
  const auto r = c3("--threads 1 compress -m '" + m.model() + "' docs -o lat", dir);
  ASSERT_EQ(r.code, 0) << r.err;
  at::set_num_threads(1);
  C3Codec codec = C3Codec::load(m.model());
  const auto encoded = codec.encode(texts);
  for (size_t i = 0; i < texts.size(); ++i) {
    const LatentFile file = read_latent_file(dir / "lat" / ("d" + std::to_string(i) + ".txt.c3"));
    EXPECT_EQ(file.model_fingerprint, codec.fingerprint());
    ASSERT_EQ(file.latents.sizes(), encoded[i].latents.sizes());
    EXPECT_TRUE(at::allclose(file.latents, encoded[i].latents, 1e-5, 1e-6)) << "text " << i;
  }
  EXPECT_EQ(codec.decode(encoded), texts);
}

TEST(CliCompress, RerunsRedoWhatIsOutOfDateAndKeepTheRest) {
  const auto& m = trained_model();
  test::TempDir dir;
  fs::create_directories(dir / "docs");
  for (int i = 0; i < 3; ++i) test::write_bytes(dir / "docs" / ("d" + std::to_string(i) + ".txt"), m.texts[i] + "\n");
  const std::string compress = "--threads 1 compress -m '" + m.model() + "' docs -o lat --summary c.json";
  const std::string reconstruct = "--threads 1 reconstruct -m '" + m.model() + "' lat -o rec --summary r.json";
  auto run = [&](const std::string& args, const char* summary) {
    const auto r = c3(args, dir);
    EXPECT_EQ(r.code, 0) << args << "\n" << r.err;
    const auto s = json::parse(test::read_bytes(dir / summary));
    return std::tuple<int, int, int>{s["written"], s["redone"], s["skipped"]};
  };
  EXPECT_EQ(run(compress, "c.json"), std::make_tuple(3, 0, 0));
  EXPECT_EQ(run(reconstruct, "r.json"), std::make_tuple(3, 0, 0));
  // An edited source: its latent and its reconstruction are redone, the others kept.
  test::write_bytes(dir / "docs" / "d1.txt", m.texts[7] + "\n");
  EXPECT_EQ(run(compress, "c.json"), std::make_tuple(1, 1, 2));
  EXPECT_EQ(run(reconstruct, "r.json"), std::make_tuple(1, 1, 2));
  EXPECT_EQ(test::read_bytes(dir / "rec" / "d1.txt"), m.texts[7] + "\n") << "the new text, not the stale one";
  EXPECT_EQ(run(compress, "c.json"), std::make_tuple(0, 0, 3)) << "nothing left to do";
  // Settings that change the bytes redo everything; --force does too.
  EXPECT_EQ(run(compress + " --latent-dtype bfloat16", "c.json"), std::make_tuple(3, 3, 0));
  EXPECT_EQ(run(compress + " --latent-dtype bfloat16", "c.json"), std::make_tuple(0, 0, 3));
  EXPECT_EQ(run(compress + " --latent-dtype bfloat16 --force", "c.json"), std::make_tuple(3, 3, 0));
  EXPECT_EQ(run(reconstruct, "r.json"), std::make_tuple(3, 3, 0)) << "the latent files changed";
  EXPECT_EQ(run(reconstruct + " --max-new-tokens 300", "r.json"), std::make_tuple(3, 3, 0));
  // A deleted output is written again, not counted as redone.
  fs::remove(dir / "rec" / "d2.txt");
  EXPECT_EQ(run(reconstruct + " --max-new-tokens 300", "r.json"), std::make_tuple(1, 0, 2));
  EXPECT_EQ(c3(compress + " --skip-existing", dir).code, 2) << "the old flag is gone";
}

TEST(CliCompress, OutputsNeverOverwriteOrReadBackInputsAndEmptySelectionsAreErrors) {
  const auto& m = trained_model();
  test::TempDir dir;
  const std::string run = "--threads 1 compress -m '" + m.model() + "' ";
  test::write_bytes(dir / "v.txt", m.texts[0]);
  auto r = c3(run + "v.txt -o v.txt --force", dir);
  EXPECT_EQ(r.code, 2);
  EXPECT_THAT(r.err, HasSubstr("v.txt: the output would overwrite an input"));
  EXPECT_EQ(test::read_bytes(dir / "v.txt"), m.texts[0]) << "the source is untouched";
  fs::create_directories(dir / "docs");
  test::write_bytes(dir / "docs" / "a.txt", m.texts[1]);
  r = c3(run + "docs -o docs/lat --include '*'", dir);
  EXPECT_EQ(r.code, 2);
  EXPECT_THAT(r.err, HasSubstr("inside the input folder"));
  EXPECT_FALSE(fs::exists(dir / "docs" / "lat"));
  EXPECT_EQ(c3(run + "docs -o docs/lat", dir).code, 0) << "*.txt.c3 outputs are not read back by *.txt";
  // A folder with nothing to take is an error naming the globs and what the folder holds instead.
  fs::create_directories(dir / "json");
  test::write_bytes(dir / "json" / "data.json", "{}");
  r = c3(run + "json -o out", dir);
  EXPECT_EQ(r.code, 2);
  EXPECT_THAT(r.err, HasSubstr("json: no files match --include *.txt *.md"));
  EXPECT_THAT(r.err, HasSubstr("(it has data.json)"));
  fs::create_directories(dir / "empty");
  r = c3(run + "empty -o out", dir);
  EXPECT_EQ(r.code, 2);
  EXPECT_THAT(r.err, HasSubstr("the folder has no files"));
  // Common text extensions, in any case, are taken by default.
  fs::create_directories(dir / "mixed");
  test::write_bytes(dir / "mixed" / "NOTES.TXT", m.texts[2]);
  test::write_bytes(dir / "mixed" / "guide.rst", m.texts[3]);
  r = c3(run + "mixed -o mixed-lat", dir);
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(files_under(dir / "mixed-lat"), (std::vector<std::string>{"NOTES.TXT.c3", "guide.rst.c3"}));
}

TEST(CliCompress, GlobsWorkAsInGitignoreAndOnesThatMatchNothingAreWarnedAbout) {
  const auto& m = trained_model();
  test::TempDir dir;
  fs::create_directories(dir / "docs" / "sub" / "deep");
  test::write_bytes(dir / "docs" / "top.txt", m.texts[0]);
  test::write_bytes(dir / "docs" / "sub" / "a.txt", m.texts[1]);
  test::write_bytes(dir / "docs" / "sub" / "deep" / "b.txt", m.texts[2]);
  const std::string run = "--threads 1 compress -m '" + m.model() + "' ";
  for (const char* glob : {"sub/*", "sub/**", "sub", "sub/", "/sub", "SUB"}) {
    const std::string out = "lat" + std::to_string(std::hash<std::string>{}(glob) % 100000);
    auto r = c3(run + "docs -o " + out + " --exclude '" + glob + "'", dir);
    ASSERT_EQ(r.code, 0) << glob << ": " << r.err;
    EXPECT_EQ(files_under(dir / out), std::vector<std::string>{"top.txt.c3"}) << glob;
    EXPECT_THAT(r.err, Not(HasSubstr("matched no file"))) << glob;
  }
  // `*` stays within a name: `sub/*.txt` is only sub's own files; `**` crosses folders.
  auto r = c3(run + "docs -o only --include 'sub/*.txt'", dir);
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(files_under(dir / "only"), std::vector<std::string>{"sub/a.txt.c3"});
  r = c3(run + "docs -o deep --include 'sub/**/b.txt' --include 'nothing-*.txt' --exclude '*.log'", dir);
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(files_under(dir / "deep"), std::vector<std::string>{"sub/deep/b.txt.c3"});
  EXPECT_THAT(r.err, HasSubstr("--include 'nothing-*.txt', --exclude '*.log' matched no file in the input folders"));
  // A list flag takes one value: the folder after it is the input, not a second glob.
  r = c3(run + "--include '*.txt' docs -o listed", dir);
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(files_under(dir / "listed").size(), 3u);
  r = c3(run + "--exclude top.txt --exclude 'sub/deep' docs -o two", dir);
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(files_under(dir / "two"), std::vector<std::string>{"sub/a.txt.c3"});
}

TEST(Cli, HelpShowsValueTypesAndUsageErrorsPointToTheSubcommandsHelp) {
  test::TempDir dir;
  auto r = c3("--help", dir);
  ASSERT_EQ(r.code, 0);
  EXPECT_THAT(r.out, HasSubstr("--threads INT"));
  EXPECT_THAT(r.out, HasSubstr("--progress-every NUMBER"));
  EXPECT_THAT(r.out, Not(HasSubstr("--threads TEXT")));
  r = c3("compress --help", dir);
  ASSERT_EQ(r.code, 0);
  EXPECT_THAT(r.out, HasSubstr("--batch-tokens INT"));
  EXPECT_THAT(r.out, HasSubstr("--dtype auto|float32"));
  r = c3("compress --frobnicate x", dir);
  EXPECT_EQ(r.code, 2);
  EXPECT_THAT(r.err, HasSubstr("run 'c3 compress --help' for usage"));
  r = c3("tokenizer train --vocab-size", dir);
  EXPECT_EQ(r.code, 2);
  EXPECT_THAT(r.err, HasSubstr("run 'c3 tokenizer train --help' for usage"));
}

TEST(Cli, InfoDescribesALatentFile) {
  const auto& m = trained_model();
  test::TempDir dir;
  test::write_bytes(dir / "a.txt", m.texts[2]);
  ASSERT_EQ(c3("--threads 1 compress -m '" + m.model() + "' a.txt -o a.c3 --max-span-tokens 10", dir).code, 0);
  auto r = c3("info a.c3", dir);
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("latent file   c3 latents, format 1"));
  EXPECT_THAT(r.out, HasSubstr("source        a.txt (" + std::to_string(m.texts[2].size()) + " bytes"));
  r = c3("info --json a.c3", dir);
  ASSERT_EQ(r.code, 0) << r.err;
  const json info = json::parse(r.out);
  EXPECT_EQ(info["latent_tokens_per_span"], 8);
  EXPECT_GT(info["spans"].get<int>(), 1);
  EXPECT_EQ(info["spans"].get<size_t>(), info["span_tokens"].size());
  EXPECT_EQ(info["source_sha256"].get<std::string>().size(), 64u);
  for (const auto& t : info["span_tokens"]) EXPECT_LE(t.get<int>(), 10);
}

TEST(CliCompress, PipesFromCompressToReconstructWarnsAboutCutOutputsAndNamesNonLatentFiles) {
  const auto& m = trained_model();
  test::TempDir dir;
  test::write_bytes(dir / "in.txt", m.texts[4]);
  const std::string model = " -m '" + m.model() + "' ";
  auto r =
      c3("--threads 1 compress" + model + "- < in.txt | '" C3_BINARY "' --threads 1 reconstruct" + model + "-", dir);
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out, m.texts[4] + "\n");
  EXPECT_THAT(r.err, Not(HasSubstr("[warning]")));
  // Cut short everywhere: said, with what to do.
  ASSERT_EQ(c3("--threads 1 compress" + model + "in.txt -o in.c3", dir).code, 0);
  r = c3("--threads 1 reconstruct" + model + "in.c3 --max-new-tokens 3", dir);
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_THAT(r.err, HasSubstr("1 of 1 spans stopped at --max-new-tokens"));
  EXPECT_THAT(r.err, HasSubstr("raise --max-new-tokens"));
  // Anything else is "not a c3 latent file", naming it once.
  test::write_bytes(dir / "note.txt", "just some text, not latents");
  r = c3("--threads 1 reconstruct" + model + "note.txt", dir);
  EXPECT_EQ(r.code, 1);
  EXPECT_THAT(r.err, HasSubstr("] note.txt: not a c3 latent file ("));
  EXPECT_EQ(count(r.err, "note.txt: note.txt"), 0) << r.err;
  r = c3("--threads 1 reconstruct" + model + "- < in.txt", dir);
  EXPECT_EQ(r.code, 1);
  EXPECT_THAT(r.err, HasSubstr("<stdin>: not a c3 latent file"));
}

TEST(CliCompress, SpecialTokenStringsInDocumentsAreOrdinaryText) {
  const auto& m = trained_model();
  test::TempDir dir;
  const std::string tok = " --tokenizer '" + m.model() + "' ";
  for (const char* s : {"<img>", "<imgpad>", "</img>", "<|im_end|>"}) {
    test::write_bytes(dir / "doc.txt", m.texts[0] + " " + s + " tail");
    auto r = c3("--threads 1 compress -m '" + m.model() + "' doc.txt -o doc.c3 --force", dir);
    ASSERT_EQ(r.code, 0) << s << "\n" << r.err;
    const auto spans = json::parse(io::SafetensorsReader(dir / "doc.c3").metadata().at("span_tokens"));
    const int plain = std::stoi(c3("tokenize" + tok + "--count doc.txt", dir).out);
    const int special = std::stoi(c3("tokenize" + tok + "--special --count doc.txt", dir).out);
    EXPECT_EQ(spans[0].get<int>(), plain) << s << ": compress reads it as c3 tokenize does";
    EXPECT_GT(plain, special) << s << ": as text it is several tokens, not the one special token";
  }
}

TEST(CliCompress, ModelPathsNameTheRealProblemAndATrainingRunStandsForItsNewestCheckpoint) {
  const auto& m = trained_model();
  test::TempDir dir;
  test::write_bytes(dir / "in.txt", m.texts[5]);
  const fs::path checkpoint = m.model();
  auto fails = [&](const std::string& model, const std::string& why) {
    const auto r = c3("--threads 1 compress -m '" + model + "' in.txt -o in.c3", dir);
    EXPECT_EQ(r.code, 1) << model;
    EXPECT_THAT(r.err, HasSubstr(why)) << model;
    EXPECT_EQ(lines(r.err), 1) << r.err;
    EXPECT_FALSE(fs::exists(dir / "in.c3"));
  };
  fails("missing", "missing: no such folder");
  fails((checkpoint / "model.safetensors").string(), "is a file; a C3 model is the folder that holds config.json");
  fails((checkpoint / "llm1").string(), "a plain Qwen2 model, which c3 train takes as --encoder or --decoder");
  fails(dir.path().string(), "not a C3 model (no config.json, and no checkpoint-N folders of a training run)");
  // A training run's folder stands for its newest checkpoint, for compress, reconstruct and info.
  const std::string run = checkpoint.parent_path().string();
  // (With progress lines as a batch log gets them: stderr is not a terminal here.)
  auto r = c3("--threads 1 compress -m '" + run + "' in.txt -o in.c3 --progress-every 0.000001", dir);
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_THAT(r.err, HasSubstr("is a training run: using its newest checkpoint"));
  EXPECT_THAT(r.err, HasSubstr("] compress 1/1 files | "));
  r = c3("--threads 1 --progress-every 0.000001 reconstruct -m '" + run + "' in.c3", dir);
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out, m.texts[5] + "\n");
  EXPECT_THAT(r.err, HasSubstr("] reconstruct 1/1 files | "));
  EXPECT_EQ(r.err.find('\r'), std::string::npos);
  r = c3("info '" + (checkpoint / "model.safetensors").string() + "'", dir);
  EXPECT_EQ(r.code, 1);
  EXPECT_THAT(r.err, HasSubstr("model.safetensors: is a file; a checkpoint is the folder"));
  r = c3("info '" + run + "'", dir);
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("checkpoint-150"));
  EXPECT_THAT(r.out,
              HasSubstr("trained on    texts of up to 1024 tokens (in a window of 8192 tokens with the prompt)"));
  EXPECT_THAT(r.out, HasSubstr("runs in       float32 on the CPU, bfloat16 on CUDA"));
  r = c3("tokenize --count --tokenizer '" + run + "' in.txt", dir);
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out, c3("tokenize --count --tokenizer '" + m.model() + "' in.txt", dir).out);
}

TEST(CliCompress, StdinToStdoutAndQuestions) {
  const auto& m = trained_model();
  test::TempDir dir;
  test::write_bytes(dir / "in.txt", m.texts[3]);
  auto r = c3("--threads 1 compress -m '" + m.model() + "' - -o one.c3 < in.txt", dir);
  ASSERT_EQ(r.code, 0) << r.err;
  r = c3("--threads 1 reconstruct -m '" + m.model() + "' one.c3", dir);
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out, m.texts[3] + "\n");
  r = c3("--threads 1 reconstruct -m '" + m.model() + "' one.c3 --prompt 'What is the first word? '", dir);
  EXPECT_EQ(r.code, 0) << r.err;
}

TEST(CliCompress, LongDocumentsComeBackInOrder) {
  const auto& m = trained_model();
  test::TempDir dir;
  const auto tok = load_tokenizer(fs::path(m.model()));
  const std::string first = m.texts[0] + "\n";
  const int64_t cut = static_cast<int64_t>(tok->encode(first).size());
  test::write_bytes(dir / "long.txt", first + m.texts[1] + "\n");
  auto r = c3(
      "--threads 1 compress -m '" + m.model() + "' long.txt -o long.c3 --max-span-tokens " + std::to_string(cut), dir);
  ASSERT_EQ(r.code, 0) << r.err;
  io::SafetensorsReader reader(dir / "long.c3");
  const auto bytes = json::parse(reader.metadata().at("span_bytes"));
  ASSERT_GE(bytes.size(), 2u);
  EXPECT_EQ(bytes[0][0], 0);
  for (size_t i = 1; i < bytes.size(); ++i) EXPECT_EQ(bytes[i][0], bytes[i - 1][1]) << "spans are contiguous";
  EXPECT_EQ(bytes.back()[1].get<size_t>(), first.size() + m.texts[1].size() + 1);
  r = c3("--threads 1 reconstruct -m '" + m.model() + "' long.c3 -o long.out", dir);
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(test::read_bytes(dir / "long.out"), first + m.texts[1] + "\n");
  // The spans as one context: one continuation (or answer) per file, a job of its own.
  const std::string whole = "--threads 1 reconstruct -m '" + m.model() + "' long.c3 --max-new-tokens 12 ";
  r = c3(whole + "--task continue -o next.txt", dir);
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_TRUE(fs::exists(dir / "next.txt"));
  EXPECT_THAT(c3(whole + "--task continue -o next.txt", dir).err, HasSubstr("up to date"));
  r = c3(whole + "--prompt 'What is the first word? ' -o next.txt", dir);
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_THAT(r.err, Not(HasSubstr("up to date"))) << "another instruction, another output";
  r = c3(whole + "--task continue --prompt 'Why? '", dir);
  EXPECT_NE(r.code, 0);
  EXPECT_THAT(r.err, HasSubstr("leave out --prompt"));
}

TEST(CliCompress, ShardsCoverTheInputOnceAndOtherModelsAreRefused) {
  const auto& m = trained_model();
  test::TempDir dir;
  fs::create_directories(dir / "docs");
  for (size_t i = 0; i < m.texts.size(); ++i)
    test::write_bytes(dir / "docs" / ("d" + std::to_string(i) + ".txt"), m.texts[i]);
  int written = 0;
  for (const char* shard : {"0/2", "1/2"}) {
    const auto r =
        c3("--threads 1 compress -m '" + m.model() + "' docs -o lat --shard " + shard + " --summary s.json", dir);
    ASSERT_EQ(r.code, 0) << r.err;
    written += json::parse(test::read_bytes(dir / "s.json"))["written"].get<int>();
  }
  EXPECT_EQ(written, 12) << "no file twice";
  EXPECT_EQ(files_under(dir / "lat").size(), 12u) << "no file missed";
  EXPECT_EQ(c3("--threads 1 compress -m '" + m.model() + "' docs -o lat --shard 2/2", dir).code, 2);
  // Latents from another model (a fresh one of the same shape) are refused, naming their maker.
  auto r = c3("--threads 1 train --encoder preset:tiny --decoder preset:tiny --tokenizer '" + (m.dir / "tok").string() +
                  "' --data '" + (m.dir / "train.jsonl").string() +
                  "' -o other --latent-tokens 8 --steps 1 "
                  "--set train.eval_every=0 --set data.validation_samples=2 --set model.init_seed=5",
              dir);
  ASSERT_EQ(r.code, 0) << r.err;
  r = c3("--threads 1 reconstruct -m other/checkpoint-1 lat -o rec", dir);
  EXPECT_EQ(r.code, 1);
  EXPECT_THAT(r.err, HasSubstr("made by another model"));
  EXPECT_THAT(r.err, HasSubstr("from docs/d0.txt"));
}

// The fingerprint names the checkpoint, not the dtype it was loaded in: latents compressed in bf16
// (as on a GPU) are read by a float32 run of the same model (as on a CPU).
TEST(CliCompress, LatentsFromABfloat16RunAreReadByAFloat32RunOfTheSameModel) {
  const auto& m = trained_model();
  test::TempDir dir;
  fs::create_directories(dir / "docs");
  test::write_bytes(dir / "docs" / "d0.txt", m.texts[0]);
  auto r = c3("--threads 1 compress -m '" + m.model() + "' docs -o lat --dtype bfloat16", dir);
  ASSERT_EQ(r.code, 0) << r.err;
  r = c3("--threads 1 reconstruct -m '" + m.model() + "' lat -o rec --dtype float32", dir);
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_TRUE(fs::exists(dir / "rec" / "d0.txt"));
}

// --quantize int8 decodes on int8 weights: a setting that changes an output's bytes, so a run
// without it redoes what a run with it wrote; it decodes in float32 on the CPU and says so.
TEST(CliReconstruct, Int8DecodingIsARecordedSettingAndNeedsFloat32) {
  const auto& m = trained_model();
  test::TempDir dir;
  fs::create_directories(dir / "docs");
  test::write_bytes(dir / "docs" / "d0.txt", m.texts[0]);
  auto r = c3("--threads 1 compress -m '" + m.model() + "' docs -o lat", dir);
  ASSERT_EQ(r.code, 0) << r.err;
  const std::string reconstruct = "--threads 1 reconstruct -m '" + m.model() + "' lat -o rec --batch-size 1";
  r = c3(reconstruct + " --quantize int8 --summary s.json", dir);
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_TRUE(fs::exists(dir / "rec" / "d0.txt"));
  r = c3(reconstruct + " --summary s.json", dir);
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(json::parse(test::read_bytes(dir / "s.json"))["redone"], 1) << "made with int8 weights: redone";
  r = c3(reconstruct + " --quantize int8 --dtype bfloat16", dir);
  EXPECT_EQ(r.code, 2);
  EXPECT_THAT(r.err, HasSubstr("int8 quantization decodes on the CPU in float32"));
  r = c3(reconstruct + " --quantize int4", dir);
  EXPECT_EQ(r.code, 2);
  EXPECT_THAT(r.err, HasSubstr("int4"));
}

TEST(CliCompress, AKilledRunResumesToExactlyTheUninterruptedOutputs) {
  const auto& m = trained_model();
  test::TempDir dir;
  fs::create_directories(dir / "docs");
  for (int i = 0; i < 120; ++i)
    test::write_bytes(dir / "docs" / ("d" + std::to_string(1000 + i) + ".txt"), m.texts[i % 12]);
  auto r = c3("--threads 1 compress -m '" + m.model() + "' docs -o lat", dir);
  ASSERT_EQ(r.code, 0) << r.err;
  // Reconstruction is the slow half: kill it part way (SIGKILL, no chance to clean up).
  const std::string args =
      "--threads 1 reconstruct -m '" + m.model() + "' lat -o rec --batch-size 4 --max-new-tokens 64";
  const pid_t pid =
      test::spawn_shell("cd '" + dir.path().string() + "' && exec '" + C3_BINARY + "' " + args + " 2>/dev/null");
  test::wait_until([&] { return fs::exists(dir / "rec") && files_under(dir / "rec").size() >= 8; });
  kill(pid, SIGKILL);
  test::wait_exit(pid);
  const size_t before = files_under(dir / "rec").size();
  EXPECT_LT(before, 120u) << "killed part way";
  // Whether the kill caught a file half-written is down to timing; leave one such temporary for sure.
  test::write_bytes(dir / "rec" / ("d1119.txt.tmp-" + std::to_string(pid) + "-5eed"), "half a reconstruction");
  r = c3(args, dir);
  ASSERT_EQ(r.code, 0) << r.err;
  r = c3("--threads 1 reconstruct -m '" + m.model() + "' lat -o straight --batch-size 4 --max-new-tokens 64", dir);
  ASSERT_EQ(r.code, 0) << r.err;
  const auto resumed = files_under(dir / "rec"), straight = files_under(dir / "straight");
  EXPECT_EQ(resumed, straight) << "the same files, and no stray temporaries";
  for (const auto& f : straight)
    EXPECT_EQ(test::read_bytes(dir / "rec" / f), test::read_bytes(dir / "straight" / f)) << f;
}

}  // namespace
}  // namespace c3
