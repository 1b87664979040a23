#include "c3/util/atomic_file.h"

#include <gtest/gtest.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <set>

#include "c3/util/error.h"
#include "test_support.h"

namespace c3 {
namespace {

namespace fs = std::filesystem;

TEST(AtomicFile, NothingAppearsUntilCommitAndNothingRemainsOnFailure) {
  test::TempDir dir;
  {
    AtomicFile f(dir / "out.txt");
    f.write("partial");
    EXPECT_FALSE(fs::exists(dir / "out.txt"));
  }  // destroyed without commit, as when an exception unwinds
  EXPECT_TRUE(fs::is_empty(dir.path()));
  write_file_atomically(dir / "out.txt", "old");
  {
    AtomicFile f(dir / "out.txt");
    f.write("new contents");
    EXPECT_EQ(test::read_bytes(dir / "out.txt"), "old");
    f.commit();
  }
  EXPECT_EQ(test::read_bytes(dir / "out.txt"), "new contents");
  EXPECT_EQ(std::distance(fs::directory_iterator(dir.path()), fs::directory_iterator()), 1);
  EXPECT_THROW(AtomicFile(dir / "no-such-dir" / "x"), Error);
}

TEST(AtomicDirectory, AppearsWholeOrNotAtAll) {
  test::TempDir dir;
  {
    AtomicDirectory d(dir / "ckpt", false);
    write_file_atomically(d.staging() / "a", "1");
  }
  EXPECT_TRUE(fs::is_empty(dir.path()));
  {
    AtomicDirectory d(dir / "ckpt", false);
    write_file_atomically(d.staging() / "a", "1");
    d.commit();
  }
  EXPECT_EQ(test::read_bytes(dir / "ckpt" / "a"), "1");
  EXPECT_THROW(AtomicDirectory(dir / "ckpt", false), Error);
  {
    AtomicDirectory d(dir / "ckpt", true);
    write_file_atomically(d.staging() / "b", "2");
    d.commit();
  }
  EXPECT_FALSE(fs::exists(dir / "ckpt" / "a"));
  EXPECT_EQ(test::read_bytes(dir / "ckpt" / "b"), "2");
  EXPECT_EQ(std::distance(fs::directory_iterator(dir.path()), fs::directory_iterator()), 1);
}

// The PID of a process that has exited.
long dead_pid() {
  pid_t pid = 0;
  const char* argv[] = {"/bin/true", nullptr};
  if (posix_spawn(&pid, "/bin/true", nullptr, nullptr, const_cast<char* const*>(argv), nullptr) != 0) return 0;
  int status = 0;
  waitpid(pid, &status, 0);
  return pid;
}

std::set<std::string> names_in(const fs::path& dir) {
  std::set<std::string> names;
  for (const auto& e : fs::directory_iterator(dir)) names.insert(e.path().filename().string());
  return names;
}

TEST(StaleTemporaries, OnlyOwnedLeftoversOfDeadProcessesAreRemoved) {
  test::TempDir dir;
  const std::string dead = std::to_string(dead_pid()), alive = std::to_string(::getpid());
  ASSERT_NE(dead, "0");
  test::write_bytes(dir / "a.txt", "done");
  test::write_bytes(dir / ("a.txt.tmp-" + dead + "-3f2a"), "half");        // killed writer of an owned file
  test::write_bytes(dir / ("b.txt.tmp-" + alive + "-77"), "in progress");  // a live writer
  test::write_bytes(dir / ("c.txt.tmp-" + dead + "-1"), "half");           // not owned
  test::write_bytes(dir / ("a.txt.tmp-" + dead + "-xyz"), "not ours");     // not our pattern
  test::write_bytes(dir / "a.txt.tmp-", "not ours");
  fs::create_directories(dir / (".checkpoint-7.tmp-" + dead + "-ab"));  // a killed checkpoint save
  test::write_bytes(dir / (".checkpoint-7.tmp-" + dead + "-ab") / "model.safetensors", "x");
  fs::create_directories(dir / (".checkpoint-5.tmp-" + dead + "-cd.old"));
  fs::create_directories(dir / "checkpoint-4");
  const auto owned = [](const std::string& name) {
    return name == "a.txt" || name == "b.txt" || name.rfind("checkpoint-", 0) == 0;
  };
  EXPECT_EQ(remove_stale_temporaries(dir.path(), owned), 3);
  EXPECT_EQ(names_in(dir.path()),
            (std::set<std::string>{"a.txt", "b.txt.tmp-" + alive + "-77", "c.txt.tmp-" + dead + "-1",
                                   "a.txt.tmp-" + dead + "-xyz", "a.txt.tmp-", "checkpoint-4"}));
  EXPECT_EQ(remove_stale_temporaries(dir / "no-such-folder", owned), 0);
}

}  // namespace
}  // namespace c3
