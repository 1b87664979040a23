// Which files of a folder a command takes, with globs as users write them in .gitignore and
// rsync filters. compress, reconstruct, eval, train and tokenizer train read folders through it,
// so a folder means the same files to all of them.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

namespace c3 {

// The text files a folder stands for when no --include is given.
const std::vector<std::string>& text_file_globs();  // *.txt *.md *.text *.markdown *.rst

// One gitignore-style pattern, matched case-insensitively against a path below the folder:
//   - without a '/' (but a trailing one) it matches a name at any depth: `*.txt`, `drafts`;
//   - with one it is anchored at the folder: `sub/*`, `/notes.txt`, `a/**/b.md`;
//   - `*`, `?` and `[...]` stay within a name; `**` spans any number of folders;
//   - a pattern that matches a folder takes everything below it (`sub`, `sub/`, `sub/**`);
//   - a trailing '/' matches folders only.
class PathGlob {
 public:
  explicit PathGlob(const std::string& pattern);
  // `relative`: a file's path below the folder.
  bool matches(const std::filesystem::path& relative) const;
  const std::string& pattern() const { return pattern_; }

 private:
  bool matches_from(size_t segment, const std::vector<std::string>& names, size_t name, size_t end) const;

  std::string pattern_;
  std::vector<std::string> segments_;
  bool folders_only_ = false;
};

// A file is taken when an include glob matches it (or there are none) and no exclude glob does.
// list() remembers which globs matched something, so a glob that matched nothing can be named.
class FileSelection {
 public:
  FileSelection(const std::vector<std::string>& include, const std::vector<std::string>& exclude);
  bool takes(const std::filesystem::path& relative) const;

  struct Listing {
    std::vector<std::filesystem::path> taken;  // relative to the folder, sorted
    std::vector<std::string> left_out;         // files the globs left out, sorted
  };
  // Every regular file below `folder` (recursively). Errors name the folder.
  Listing list(const std::filesystem::path& folder);

  // "--include *.txt *.md --exclude sub" (at most a few of each), for messages.
  std::string describe() const;
  // Globs that matched no file in any list() so far, as "--exclude 'sub/*'".
  std::vector<std::string> unmatched(bool includes, bool excludes) const;

 private:
  struct Glob {
    PathGlob glob;
    bool used = false;
  };
  std::vector<Glob> include_, exclude_;
};

}  // namespace c3
