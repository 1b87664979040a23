#include "c3/util/atomic_file.h"

#include <gtest/gtest.h>

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

}  // namespace
}  // namespace c3
