// What the tests of the `c3` binary share: running it, and a tiny model trained once per test
// process to reconstruct its texts exactly.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "test_support.h"

namespace c3::test {

struct Result {
  int code;
  std::string out, err;
};

// Runs `c3 ARGS` in `dir` (stdin from /dev/null unless ARGS redirects it).
Result c3(const std::string& args, const TempDir& dir, const std::string& env = "env -u OMP_WAIT_POLICY");
Result c3(const std::string& args, const std::filesystem::path& dir, const std::string& env = "env -u OMP_WAIT_POLICY");

int lines(const std::string& s);
int count(const std::string& s, const std::string& what);
// Starts `sh -c COMMAND` in the background (posix_spawn: no fork() after OpenMP started); its pid.
pid_t spawn_shell(const std::string& command);
// Waits for a spawned process: its exit code, or 128 + the signal that ended it.
int wait_exit(pid_t pid);
// Polls `ready` every `interval` until it holds or `timeout` passes; returns whether it held.
bool wait_until(const std::function<bool()>& ready, std::chrono::milliseconds interval = std::chrono::milliseconds(5),
                std::chrono::seconds timeout = std::chrono::seconds(60));

// Regular files below `root`, relative to it, sorted.
std::vector<std::string> files_under(const std::filesystem::path& root);

// A small from-scratch training setup: data, tokenizer and the flags every train run of the tests
// shares.
struct TrainFixture {
  TempDir dir;
  TrainFixture();
  std::string args(const std::string& output, int steps) const;
};

// A tiny C3 trained (inside the test, a few seconds) to reconstruct `texts`, so round trips can be
// checked byte for byte.
struct TrainedModel {
  TempDir dir;
  std::vector<std::string> texts = random_texts(12, 8, 21);
  TrainedModel();
  std::string model() const { return (dir / "run" / "checkpoint-150").string(); }
};
const TrainedModel& trained_model();  // trained on first use, shared within the process

}  // namespace c3::test
