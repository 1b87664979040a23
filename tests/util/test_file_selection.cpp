// Globs as users write them in .gitignore and rsync filters, and which files a folder stands for.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "c3/util/error.h"
#include "c3/util/file_selection.h"
#include "test_support.h"

namespace c3 {
namespace {

namespace fs = std::filesystem;

TEST(PathGlob, MatchesNamesAtAnyDepthAnchoredPathsAndWholeFolders) {
  const std::vector<std::pair<std::string, std::vector<std::pair<std::string, bool>>>> cases = {
      {"*.txt", {{"a.txt", true}, {"sub/deep/a.TXT", true}, {"a.txt.c3", false}, {"txt", false}}},
      {"sub", {{"sub/a.txt", true}, {"x/sub/a.txt", true}, {"sub", true}, {"subway/a.txt", false}}},
      {"sub/", {{"sub/a.txt", true}, {"sub", false}, {"x/sub/deep/a", true}}},
      {"sub/*", {{"sub/a.txt", true}, {"sub/deep/a.txt", true}, {"x/sub/a.txt", false}, {"sub", false}}},
      {"sub/*.txt", {{"sub/a.txt", true}, {"sub/deep/a.txt", false}}},
      {"sub/**", {{"sub/a.txt", true}, {"sub/deep/a.txt", true}, {"other/a.txt", false}}},
      {"/top.txt", {{"top.txt", true}, {"sub/top.txt", false}}},
      {"./top.txt", {{"top.txt", true}, {"sub/top.txt", false}}},
      {"a/**/b.md", {{"a/b.md", true}, {"a/x/y/b.md", true}, {"a/x/c.md", false}}},
      {"**/notes", {{"notes/x", true}, {"a/b/notes/x", true}, {"a/notes.txt", false}}},
      {"d?ta[0-9].txt", {{"data1.txt", true}, {"dota9.txt", true}, {"data.txt", false}}},
  };
  for (const auto& [pattern, paths] : cases) {
    const PathGlob glob(pattern);
    for (const auto& [path, expected] : paths) EXPECT_EQ(glob.matches(path), expected) << pattern << " on " << path;
  }
  EXPECT_THROW(PathGlob("/"), UsageError);
}

TEST(FileSelection, ListsTakenFilesSortedAndKnowsWhichGlobsMatchedNothing) {
  test::TempDir dir;
  for (const char* f : {"b.txt", "a.md", "sub/c.txt", "sub/skip.txt", "img.png"}) {
    fs::create_directories((dir / f).parent_path());
    test::write_bytes(dir / f, "t");
  }
  FileSelection selection(text_file_globs(), {"sub/skip.txt", "*.log"});
  const auto listing = selection.list(dir.path());
  EXPECT_EQ(listing.taken, (std::vector<fs::path>{"a.md", "b.txt", "sub/c.txt"}));
  EXPECT_EQ(listing.left_out, (std::vector<std::string>{"img.png", "sub/skip.txt"}));
  EXPECT_THAT(selection.unmatched(false, true), testing::ElementsAre("--exclude '*.log'"));
  EXPECT_THAT(selection.unmatched(true, false), testing::Contains("--include '*.rst'"));
  EXPECT_THAT(selection.describe(), testing::HasSubstr("--include *.txt *.md"));
  EXPECT_TRUE(FileSelection({}, {}).takes("anything/at.all")) << "no include globs: every file";
}

}  // namespace
}  // namespace c3
