// Data-parallel `c3 train` on CPU with Gloo, several processes launched by the test as torchrun
// would (RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT): the same weights as one process on the same
// global batch, replicated or with sharded optimizer state; resuming, also on another world size;
// a dead rank or a missing one ends the run with an error instead of a hang.
#include <arpa/inet.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <fstream>

#include <nlohmann/json.hpp>

#include "c3/model/c3_io.h"
#include "c3/train/checkpoints.h"
#include "cli_support.h"

namespace c3 {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using testing::HasSubstr;

// A TCP port nobody listens on now (the kernel's choice for port 0).
int free_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  socklen_t len = sizeof addr;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  ::close(fd);
  return ntohs(addr.sin_port);
}

struct Rank {
  pid_t pid = 0;
  fs::path log;
};

// Starts rank `rank` of `world` running `c3 ARGS` in `dir`, its stderr to a log file.
Rank start_rank(const test::TempDir& dir, int rank, int world, int port, const std::string& args) {
  Rank r;
  r.log = dir / ("rank" + std::to_string(rank) + ".log");
  const std::string shell = "cd '" + dir.path().string() + "' && RANK=" + std::to_string(rank) +
                            " WORLD_SIZE=" + std::to_string(world) + " LOCAL_RANK=" + std::to_string(rank) +
                            " MASTER_ADDR=127.0.0.1 MASTER_PORT=" + std::to_string(port) + " exec '" C3_BINARY "' " +
                            args + " >/dev/null 2>'" + r.log.string() + "'";
  r.pid = test::spawn_shell(shell);
  return r;
}

int wait_rank(const Rank& r) { return test::wait_exit(r.pid); }

// Waits until rank 0 has logged training step 2 of 400.
void wait_for_step_2(const test::TempDir& dir) {
  test::wait_until([&] { return test::read_bytes(dir / "rank0.log").find("step 2/400") != std::string::npos; },
                   std::chrono::milliseconds(20));
}

// Runs `world` ranks to completion; returns their exit codes.
std::vector<int> run_ranks(const test::TempDir& dir, int world, const std::string& args) {
  const int port = free_port();
  std::vector<Rank> ranks;
  for (int r = 0; r < world; ++r) ranks.push_back(start_rank(dir, r, world, port, args));
  std::vector<int> codes;
  for (const auto& r : ranks) codes.push_back(wait_rank(r));
  return codes;
}

struct Corpus {
  test::TempDir dir;
  Corpus() {
    test::write_jsonl(dir / "train.jsonl", test::random_texts(32, 10, 41));
    test::train_test_tokenizer(test::random_texts(200, 10, 42), dir / "tok", 300);
  }
  // Global batch 8 per micro-batch x 2 accumulation, whatever the world size.
  std::string train_args(int world, const std::string& out, const std::string& extra = "", int steps = 6) const {
    return "--threads 1 train --encoder preset:tiny --decoder preset:tiny --tokenizer tok --data train.jsonl -o " +
           out + " --latent-tokens 8 --steps " + std::to_string(steps) + " --lr 2e-3 --grad-accum 2 --batch-size " +
           std::to_string(8 / world) +
           " --set optim.warmup_steps=1 --set train.eval_every=0 --set data.validation_samples=0 --set "
           "train.log_every=1"
           " --set train.save_every=3 --set train.keep_checkpoints=5 --set train.dist_timeout=60"
           // lm_head chunks of 8 rows, each recomputed: its gradient accumulates per chunk (ZeRO-2 defers it)
           " --set train.loss_chunk=8 " +
           extra;
  }
};

// Largest |a - b| over all parameters of two checkpoints, and the largest |a|.
std::pair<double, double> max_difference(const fs::path& a, const fs::path& b) {
  C3Model ma = load_c3(a), mb = load_c3(b);
  auto pb = mb->named_parameters();
  double diff = 0, scale = 0;
  for (const auto& item : ma->named_parameters()) {
    diff = std::max(diff, (item.value() - pb[item.key()]).abs().max().item<double>());
    scale = std::max(scale, item.value().abs().max().item<double>());
  }
  return {diff, scale};
}

std::vector<double> losses(const fs::path& metrics) {
  std::vector<double> out;
  std::ifstream in(metrics);
  std::string line;
  while (std::getline(in, line)) {
    const json j = json::parse(line);
    if (j["type"] == "train") out.push_back(j["loss"].get<double>());
  }
  return out;
}

struct WorldZero {
  int world, zero;
};
// Runs "one" and "two" of `c` trained alike: parameters within `tolerance` (relative to the largest)
// after 6 steps and every step's loss within `tolerance` (relative). Returns the largest difference.
double expect_trained_alike(const Corpus& c, double tolerance) {
  const auto [diff, scale] = max_difference(c.dir / "one" / "checkpoint-6", c.dir / "two" / "checkpoint-6");
  EXPECT_LT(diff, tolerance * std::max(1.0, scale)) << "largest parameter difference after 6 steps";
  const auto la = losses(c.dir / "one" / "metrics.jsonl"), lb = losses(c.dir / "two" / "metrics.jsonl");
  EXPECT_EQ(la.size(), 6u);
  EXPECT_EQ(lb.size(), la.size());
  for (size_t i = 0; i < std::min(la.size(), lb.size()); ++i)
    EXPECT_NEAR(la[i], lb[i], tolerance * la[i]) << "step " << i + 1;
  if (!la.empty()) {
    EXPECT_NE(la.front(), la.back()) << "it trained";
  }
  return diff;
}

class DataParallel : public testing::TestWithParam<WorldZero> {};

// One rank through a process group (torchrun --nproc-per-node 1: the path a one-GPU NCCL check takes)
// and two ranks, both against one plain process.
TEST_P(DataParallel, RanksTrainAsOneProcessOnTheSameGlobalBatch) {
  const auto [world, zero] = GetParam();
  const Corpus c;
  ASSERT_EQ(test::c3(c.train_args(1, "one"), c.dir).code, 0);
  const auto codes =
      run_ranks(c.dir, world, c.train_args(world, "two", "--set optim.zero_stage=" + std::to_string(zero)));
  ASSERT_EQ(codes, std::vector<int>(static_cast<size_t>(world), 0))
      << test::read_bytes(c.dir / "rank0.log") << (world > 1 ? test::read_bytes(c.dir / "rank1.log") : "");
  EXPECT_THAT(test::read_bytes(c.dir / "rank0.log"),
              HasSubstr("data parallel: gloo, rank 0 of " + std::to_string(world)));
  if (world > 1) {
    EXPECT_EQ(test::read_bytes(c.dir / "rank1.log"), "") << "only rank 0 logs";
  }
  // Same data, same updates; only the order of floating-point sums differs (two partial
  // gradients all-reduced vs one sum, padding to each micro-batch's own longest sample).
  const double diff = expect_trained_alike(c, 1e-5);
  const auto state = json::parse(test::read_bytes(c.dir / "two" / "checkpoint-6" / "training_state" / "state.json"));
  EXPECT_EQ(state["world_size"], world);
  EXPECT_EQ(state["optimizer_shards"], zero >= 1 ? world : 1);
  EXPECT_EQ(fs::exists(c.dir / "two" / "checkpoint-6" / "training_state" / "optimizer-rank-1.safetensors"),
            zero >= 1 && world > 1);
  std::printf("[ measured ] %d rank(s), ZeRO stage %d: max |param difference| %.3g\n", world, zero, diff);
}

INSTANTIATE_TEST_SUITE_P(WorldZero, DataParallel,
                         testing::Values(WorldZero{1, 2}, WorldZero{2, 0}, WorldZero{2, 1}, WorldZero{2, 2}),
                         [](const testing::TestParamInfo<WorldZero>& info) {
                           return std::to_string(info.param.world) + "ranks_zero" + std::to_string(info.param.zero);
                         });

std::vector<json> validations(const fs::path& metrics) {
  std::vector<json> out;
  std::ifstream in(metrics);
  for (std::string line; std::getline(in, line);)
    if (json::parse(line)["type"] == "validation") out.push_back(json::parse(line));
  return out;
}

// The paper's precision (bf16 weights, fp32 masters and fp32 gradient sums) under ZeRO-2, with
// validation spread over the ranks: the same training and the same validation records as one process.
TEST(DataParallelBf16, TwoRanksWithFp32MastersTrainAndValidateAsOneProcess) {
  const Corpus c;
  const std::string bf16 =
      "--set model.dtype=bfloat16 --set train.eval_every=3 --set data.validation_samples=6 "
      "--set train.eval_precision_samples=5 --set train.eval_max_new_tokens=12";
  auto r = test::c3(c.train_args(1, "one", bf16), c.dir);
  ASSERT_EQ(r.code, 0) << r.err;
  ASSERT_EQ(run_ranks(c.dir, 2, c.train_args(2, "two", bf16 + " --set optim.zero_stage=2")), (std::vector<int>{0, 0}))
      << test::read_bytes(c.dir / "rank0.log") << test::read_bytes(c.dir / "rank1.log");
  // bf16 weights are rounded from fp32 masters that differ only in summation order: at most one
  // bf16 step (2^-7 = 0.0078 at the largest weights, about 1.0).
  const double diff = expect_trained_alike(c, 1e-2);
  const auto va = validations(c.dir / "one" / "metrics.jsonl"), vb = validations(c.dir / "two" / "metrics.jsonl");
  ASSERT_EQ(va.size(), 3u) << "steps 0, 3 and 6";
  ASSERT_EQ(vb.size(), 3u);
  for (size_t i = 0; i < va.size(); ++i) {
    EXPECT_EQ(va[i]["step"], vb[i]["step"]);
    EXPECT_EQ(vb[i]["precision_samples"], 5);
    EXPECT_NEAR(va[i]["validation_loss"].get<double>(), vb[i]["validation_loss"].get<double>(),
                (i == 0 ? 1e-6 : 1e-2) * va[i]["validation_loss"].get<double>())
        << "step " << va[i]["step"];
  }
  // Before any update the weights are the same: so is every reconstruction.
  EXPECT_EQ(va[0]["validation_precision"], vb[0]["validation_precision"]);
  std::printf("[ measured ] bf16 + fp32 masters, ZeRO-2, 2 ranks: max |param difference| %.3g\n", diff);
}

TEST(DataParallelResume, ShardedStateResumesExactlyAndOnAnotherWorldSize) {
  const Corpus c;
  const std::string zero = "--set optim.zero_stage=2";
  ASSERT_EQ(run_ranks(c.dir, 2, c.train_args(2, "straight", zero)), (std::vector<int>{0, 0}));
  // An interruption after step 3's checkpoint: the same two ranks finish the run exactly.
  fs::create_directories(c.dir / "resumed");
  fs::copy(c.dir / "straight" / "checkpoint-3", c.dir / "resumed" / "checkpoint-3", fs::copy_options::recursive);
  ASSERT_EQ(run_ranks(c.dir, 2, c.train_args(2, "resumed", zero)), (std::vector<int>{0, 0}))
      << test::read_bytes(c.dir / "rank0.log");
  EXPECT_EQ(max_difference(c.dir / "straight" / "checkpoint-6", c.dir / "resumed" / "checkpoint-6").first, 0.0);
  // The sharded checkpoint resumes in one process (its optimizer takes every shard's tensors).
  fs::create_directories(c.dir / "single");
  fs::copy(c.dir / "straight" / "checkpoint-3", c.dir / "single" / "checkpoint-3", fs::copy_options::recursive);
  const auto r = test::c3(c.train_args(1, "single"), c.dir);
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_THAT(r.err, HasSubstr("resumed at step 3"));
  const auto [diff, scale] = max_difference(c.dir / "straight" / "checkpoint-6", c.dir / "single" / "checkpoint-6");
  EXPECT_LT(diff, 1e-5 * std::max(1.0, scale));
}

TEST(DataParallelStop, ASignalToOneRankStopsAllAtTheSameSavedStep) {
  const Corpus c;
  const int port = free_port();
  const std::string args = c.train_args(2, "run", "--set optim.zero_stage=2 --set train.save_every=1000", 400);
  const Rank r0 = start_rank(c.dir, 0, 2, port, args), r1 = start_rank(c.dir, 1, 2, port, args);
  wait_for_step_2(c.dir);
  kill(r1.pid, SIGTERM);  // the scheduler reached one rank only, and not rank 0
  EXPECT_EQ(wait_rank(r1), 128 + SIGTERM);
  EXPECT_EQ(wait_rank(r0), 128 + SIGTERM);
  const std::string log = test::read_bytes(c.dir / "rank0.log");
  EXPECT_THAT(log, HasSubstr("stopped by signal"));
  const auto saved = list_checkpoints(c.dir / "run");
  ASSERT_EQ(saved.size(), 1u) << log;
  EXPECT_TRUE(fs::exists(saved[0] / "training_state" / "optimizer-rank-1.safetensors")) << "both shards saved";
  // Rerunning the same command resumes there.
  const int step = std::stoi(saved[0].filename().string().substr(11));
  ASSERT_EQ(
      run_ranks(c.dir, 2, c.train_args(2, "run", "--set optim.zero_stage=2 --set train.save_every=1000", step + 2)),
      (std::vector<int>{0, 0}));
  EXPECT_THAT(test::read_bytes(c.dir / "rank0.log"), HasSubstr("resumed at step " + std::to_string(step)));
}

TEST(DataParallelFailures, ADeadRankOrAMissingOneEndsTheRunWithAnError) {
  const Corpus c;
  // Rank 1 is killed once training runs: rank 0's next collective fails instead of waiting.
  const int port = free_port();
  const std::string args = c.train_args(2, "run", "--set train.save_every=1000", 400);
  const Rank r0 = start_rank(c.dir, 0, 2, port, args), r1 = start_rank(c.dir, 1, 2, port, args);
  wait_for_step_2(c.dir);
  kill(r1.pid, SIGKILL);
  wait_rank(r1);
  const auto killed = std::chrono::steady_clock::now();
  EXPECT_EQ(wait_rank(r0), 1);
  EXPECT_LT(std::chrono::steady_clock::now() - killed, std::chrono::seconds(30)) << "no hang";
  EXPECT_THAT(test::read_bytes(c.dir / "rank0.log"), HasSubstr("failed (a rank died, or timed out)"));
  // Only one of two ranks ever starts: the rendezvous gives up after train.dist_timeout.
  const auto start = std::chrono::steady_clock::now();
  const Rank alone = start_rank(c.dir, 0, 2, free_port(), c.train_args(2, "alone", "--set train.dist_timeout=3"));
  EXPECT_EQ(wait_rank(alone), 1);
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(30));
  EXPECT_THAT(test::read_bytes(c.dir / "rank0.log"), HasSubstr("rendezvous at 127.0.0.1:"));
}

}  // namespace
}  // namespace c3
