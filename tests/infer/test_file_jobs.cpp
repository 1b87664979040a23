// Job lists for compress/reconstruct: mirroring, globs, single files, stdin; shards; batching.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdlib>

#include "c3/infer/codec.h"
#include "c3/infer/file_jobs.h"
#include "c3/util/error.h"
#include "test_support.h"

namespace c3 {
namespace {

namespace fs = std::filesystem;

TEST(FileJobs, FoldersAreMirroredAndFilteredByGlobs) {
  test::TempDir dir;
  fs::create_directories(dir / "in" / "a" / "deep");
  for (const char* f : {"x.txt", "a/y.md", "a/deep/z.txt", "a/skip.json", "a/deep/notes.txt"})
    test::write_bytes(dir / "in" / f, "t");
  ListOptions o;
  o.include = {"*.txt", "*.md"};
  o.exclude = {"a/deep/notes.txt"};
  o.output = dir / "out";
  o.add_suffix = ".c3";
  const auto jobs = list_file_jobs({(dir / "in").string()}, o);
  ASSERT_EQ(jobs.size(), 3u);
  EXPECT_EQ(jobs[0].output, dir / "out" / "a" / "deep" / "z.txt.c3");
  EXPECT_EQ(jobs[1].output, dir / "out" / "a" / "y.md.c3");
  EXPECT_EQ(jobs[2].output, dir / "out" / "x.txt.c3");
  EXPECT_EQ(jobs[2].source, dir / "in" / "x.txt");
  ListOptions back;
  back.output = dir / "text";
  back.include = {"*.c3"};
  back.remove_suffix = ".c3";
  test::write_bytes(dir / "one.txt.c3", "t");
  EXPECT_EQ(list_file_jobs({(dir / "one.txt.c3").string()}, back)[0].output, dir / "text")
      << "one input: OUTPUT is the file";
  fs::create_directories(dir / "text");
  EXPECT_EQ(list_file_jobs({(dir / "one.txt.c3").string()}, back)[0].output, dir / "text" / "one.txt");
  back.output = dir.path().string() + "/fresh/";  // a trailing slash: a folder, made later
  EXPECT_EQ(list_file_jobs({(dir / "one.txt.c3").string()}, back)[0].output, dir / "fresh" / "one.txt");
  EXPECT_TRUE(names_a_folder("fresh/"));
  EXPECT_FALSE(names_a_folder(dir / "fresh"));
  ListOptions to_stdout;
  EXPECT_TRUE(list_file_jobs({(dir / "one.txt.c3").string()}, to_stdout)[0].to_stdout());
  EXPECT_TRUE(list_file_jobs({"-"}, to_stdout)[0].from_stdin());
  EXPECT_THROW(list_file_jobs({(dir / "in").string()}, to_stdout), UsageError) << "a folder needs -o";
  EXPECT_THROW(list_file_jobs({(dir / "one.txt.c3").string(), (dir / "in" / "x.txt").string()}, to_stdout), UsageError);
  EXPECT_THROW(list_file_jobs({(dir / "missing").string()}, o), Error);
}

TEST(FileJobs, ShardsSplitTheListExactlyOnce) {
  std::vector<FileJob> jobs(10);
  for (int i = 0; i < 10; ++i) jobs[i].name = std::to_string(i);
  std::vector<std::string> seen;
  for (int s = 0; s < 3; ++s)
    for (const auto& j : take_shard(jobs, Shard::parse(std::to_string(s) + "/3"))) seen.push_back(j.name);
  std::sort(seen.begin(), seen.end());
  EXPECT_EQ(seen.size(), 10u);
  EXPECT_EQ(std::unique(seen.begin(), seen.end()), seen.end());
  EXPECT_THROW(Shard::parse("3/3"), UsageError);
  EXPECT_THROW(Shard::parse("1"), UsageError);
  EXPECT_THROW(Shard::parse("a/b"), UsageError);
  setenv("RANK", "2", 1), setenv("WORLD_SIZE", "4", 1);
  const Shard from_env = Shard::parse("");
  EXPECT_EQ(from_env.index, 2);
  EXPECT_EQ(from_env.count, 4);
  unsetenv("RANK"), unsetenv("WORLD_SIZE");
  setenv("SLURM_PROCID", "1", 1), setenv("SLURM_NTASKS", "2", 1);
  EXPECT_EQ(Shard::parse("").index, 1);
  unsetenv("SLURM_PROCID"), unsetenv("SLURM_NTASKS");
  EXPECT_EQ(Shard::parse("").count, 1);
}

TEST(FileJobs, LengthBatchesRespectTheBudget) {
  const std::vector<int64_t> lengths{10, 10, 20, 20, 40, 100, 500};
  const auto batches = length_batches(lengths, 80, 100);
  size_t covered = 0;
  for (const auto& [i, j] : batches) {
    ASSERT_LT(i, j);
    EXPECT_EQ(i, covered);
    covered = j;
    if (j - i > 1) {
      EXPECT_LE(lengths[j - 1] * static_cast<int64_t>(j - i), 80);
    }
  }
  EXPECT_EQ(covered, lengths.size());
  EXPECT_EQ(batches.front(), std::make_pair(size_t{0}, size_t{4})) << "4 x 20 = 80 fits";
  EXPECT_EQ(batches.back(), std::make_pair(size_t{6}, size_t{7})) << "an oversized item goes alone";
  EXPECT_EQ(length_batches(std::vector<int64_t>(5, 1), 1000, 2).size(), 3u) << "row limit";
}

}  // namespace
}  // namespace c3
