#include "cli_support.h"

#include <gmock/gmock.h>
#include <spawn.h>
#include <sys/wait.h>

#include <algorithm>
#include <cstdlib>
#include <thread>

extern char** environ;

namespace fs = std::filesystem;

namespace c3::test {

Result c3(const std::string& args, const TempDir& dir, const std::string& env) { return c3(args, dir.path(), env); }

Result c3(const std::string& args, const fs::path& dir, const std::string& env) {
  const auto out = dir / ".stdout", err = dir / ".stderr";
  const std::string cmd = "cd '" + dir.string() + "' && " + env + " '" C3_BINARY "' " + args + " >'" + out.string() +
                          "' 2>'" + err.string() + "'" + (args.find('<') == std::string::npos ? " </dev/null" : "");
  const int status = std::system(cmd.c_str());
  Result r{WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status), read_bytes(out), read_bytes(err)};
  fs::remove(out);
  fs::remove(err);
  return r;
}

pid_t spawn_shell(const std::string& command) {
  const char* argv[] = {"/bin/sh", "-c", command.c_str(), nullptr};
  pid_t pid = 0;
  EXPECT_EQ(posix_spawn(&pid, "/bin/sh", nullptr, nullptr, const_cast<char* const*>(argv), environ), 0) << command;
  return pid;
}

int wait_exit(pid_t pid) {
  int status = 0;
  if (waitpid(pid, &status, 0) != pid) return -1;
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

bool wait_until(const std::function<bool()>& ready, std::chrono::milliseconds interval, std::chrono::seconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!ready()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(interval);
  }
  return true;
}

int lines(const std::string& s) { return static_cast<int>(std::count(s.begin(), s.end(), '\n')); }

int count(const std::string& s, const std::string& what) {
  int n = 0;
  for (size_t at = s.find(what); at != std::string::npos; at = s.find(what, at + 1)) ++n;
  return n;
}

std::vector<std::string> files_under(const fs::path& root) {
  std::vector<std::string> out;
  for (const auto& e : fs::recursive_directory_iterator(root))
    if (e.is_regular_file()) out.push_back(e.path().lexically_relative(root).string());
  std::sort(out.begin(), out.end());
  return out;
}

TrainFixture::TrainFixture() {
  write_jsonl(dir / "train.jsonl", random_texts(24, 8, 5));
  train_test_tokenizer(random_texts(300, 10, 6), dir / "tok", 500);
}

std::string TrainFixture::args(const std::string& output, int steps) const {
  return "--threads 1 train --encoder preset:tiny --decoder preset:tiny --tokenizer tok --data train.jsonl -o " +
         output + " --latent-tokens 4 --batch-size 4 --grad-accum 1 --steps " + std::to_string(steps) +
         " --set train.log_every=1 --set train.eval_every=0 --set data.validation_samples=2";
}

TrainedModel::TrainedModel() {
  write_jsonl(dir / "train.jsonl", texts);
  train_test_tokenizer(random_texts(300, 10, 22), dir / "tok", 600);
  const auto r =
      c3("--threads 1 train --encoder preset:tiny --decoder preset:tiny --tokenizer tok --data train.jsonl "
         "--validation train.jsonl -o run --latent-tokens 8 --batch-size 12 --grad-accum 1 --steps 150 "
         "--lr 3e-3 --set optim.warmup_steps=10 --set train.eval_every=150 --set train.eval_at_start=false "
         "--set train.eval_precision_samples=12",
         dir);
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_THAT(r.err, testing::HasSubstr("reconstruction precision 100.0%"))
      << "the fixture model must have learned its texts";
}

const TrainedModel& trained_model() {
  static const TrainedModel model;
  return model;
}

}  // namespace c3::test
