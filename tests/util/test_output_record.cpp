// A file c3 wrote shows it by its record; anything else, or a file changed since, is the user's.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "c3/util/error.h"
#include "c3/util/output_record.h"
#include "test_support.h"

namespace c3 {
namespace {

namespace fs = std::filesystem;

TEST(OutputRecord, OnlyFilesWrittenWithARecordAndUnchangedSinceAreC3s) {
  test::TempDir dir;
  const fs::path out = dir / "out.txt";
  EXPECT_FALSE(has_intact_record(out));
  write_recorded_output(out, "first", "key-1");
  EXPECT_TRUE(has_intact_record(out));
  EXPECT_EQ(recorded_job_key(out), "key-1");
  EXPECT_EQ(test::read_bytes(out), "first");
  write_recorded_output(out, "second", "key-2");
  EXPECT_EQ(recorded_job_key(out), "key-2");
  // Edited by its owner: no longer c3's, and no longer up to date.
  test::write_bytes(out, "edited");
  EXPECT_FALSE(has_intact_record(out));
  EXPECT_EQ(recorded_job_key(out), "");
  // A kill between the record and the file leaves the old bytes under the new record: still c3's
  // (it may replace them), but not up to date.
  write_recorded_output(dir / "k.txt", "old", "key-old");
  const std::string record_before = test::read_bytes(output_record_file(dir / "k.txt"));
  write_recorded_output(dir / "k.txt", "new", "key-new");
  test::write_bytes(dir / "k.txt", "old");  // as if the file's rename never happened
  EXPECT_TRUE(has_intact_record(dir / "k.txt"));
  EXPECT_EQ(recorded_job_key(dir / "k.txt"), "");
  // A record from before digests were kept (the job key alone) still counts as c3's.
  test::write_bytes(dir / "legacy.txt", "text");
  test::write_bytes(output_record_file(dir / "legacy.txt"), std::string(64, 'a'));
  EXPECT_EQ(recorded_job_key(dir / "legacy.txt"), std::string(64, 'a'));
  (void)record_before;
}

TEST(OutputRecord, ClaimingRefusesForeignFilesUnlessForcedAndNamesTheFirst) {
  test::TempDir dir;
  test::write_bytes(dir / "mine.txt", "user text");
  test::write_bytes(dir / "theirs.txt", "more user text");
  write_recorded_output(dir / "c3.txt", "c3 text", "k");
  const std::vector<fs::path> outputs{dir / "c3.txt", dir / "mine.txt", dir / "theirs.txt", dir / "new.txt"};
  EXPECT_EQ(foreign_files(outputs, has_intact_record), (std::vector<fs::path>{dir / "mine.txt", dir / "theirs.txt"}));
  const std::string message = test::error_of<Error>([&] { claim_outputs(outputs, has_intact_record, false); });
  EXPECT_THAT(message, testing::HasSubstr("mine.txt: exists and is not a file c3 wrote"));
  EXPECT_THAT(message, testing::HasSubstr("so do 1 more outputs"));
  EXPECT_EQ(claim_outputs(outputs, has_intact_record, true).size(), 2u);
  fs::create_directories(dir / "folder.txt");
  EXPECT_THAT(test::error_of<Error>([&] { claim_outputs({dir / "folder.txt"}, has_intact_record, true); }),
              testing::HasSubstr("is a folder, where c3 would write a file"));
}

}  // namespace
}  // namespace c3
