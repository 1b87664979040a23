#include "c3/util/file_selection.h"

#include <fnmatch.h>

#include <algorithm>

#include "c3/util/error.h"

namespace fs = std::filesystem;

namespace c3 {
namespace {

std::string joined(const std::vector<std::string>& items, size_t most) {
  std::string out;
  for (size_t i = 0; i < items.size() && i < most; ++i) out += (i ? " " : "") + items[i];
  return items.size() > most ? out + " ..." : out;
}

}  // namespace

const std::vector<std::string>& text_file_globs() {
  static const std::vector<std::string> globs{"*.txt", "*.md", "*.text", "*.markdown", "*.rst"};
  return globs;
}

PathGlob::PathGlob(const std::string& pattern) : pattern_(pattern) {
  std::string p = pattern;
  bool anchored = false;  // as .gitignore: a '/' before the end anchors, and so does a leading "./"
  while (p.rfind("./", 0) == 0) p.erase(0, 2), anchored = true;
  while (!p.empty() && p.back() == '/') folders_only_ = true, p.pop_back();
  anchored = anchored || p.find('/') != std::string::npos;
  size_t start = 0;
  while (start <= p.size()) {
    const size_t slash = std::min(p.find('/', start), p.size());
    if (slash > start) segments_.push_back(p.substr(start, slash - start));
    start = slash + 1;
  }
  if (segments_.empty()) throw UsageError("'" + pattern + "': an empty glob matches nothing");
  if (!anchored) segments_.insert(segments_.begin(), "**");
}

bool PathGlob::matches(const fs::path& relative) const {
  std::vector<std::string> names;
  for (const auto& part : relative) names.push_back(part.string());
  // The file itself, or any folder it lies in: a pattern that matches a folder takes its contents.
  for (size_t end = 1; end <= names.size(); ++end) {
    if (folders_only_ && end == names.size()) break;
    if (matches_from(0, names, 0, end)) return true;
  }
  return false;
}

bool PathGlob::matches_from(size_t segment, const std::vector<std::string>& names, size_t name, size_t end) const {
  if (segment == segments_.size()) return name == end;
  if (segments_[segment] == "**") {
    for (size_t next = name; next <= end; ++next)
      if (matches_from(segment + 1, names, next, end)) return true;
    return false;
  }
  if (name == end || fnmatch(segments_[segment].c_str(), names[name].c_str(), FNM_CASEFOLD) != 0) return false;
  return matches_from(segment + 1, names, name + 1, end);
}

FileSelection::FileSelection(const std::vector<std::string>& include, const std::vector<std::string>& exclude) {
  for (const auto& g : include) include_.push_back({PathGlob(g)});
  for (const auto& g : exclude) exclude_.push_back({PathGlob(g)});
}

bool FileSelection::takes(const fs::path& relative) const {
  const auto match = [&](const Glob& g) { return g.glob.matches(relative); };
  return (include_.empty() || std::any_of(include_.begin(), include_.end(), match)) &&
         std::none_of(exclude_.begin(), exclude_.end(), match);
}

FileSelection::Listing FileSelection::list(const fs::path& folder) {
  Listing out;
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(folder, ec); !ec && it != fs::recursive_directory_iterator();
       it.increment(ec)) {
    if (!it->is_regular_file()) continue;
    const fs::path relative = it->path().lexically_relative(folder);
    for (auto& g : include_) g.used = g.used || g.glob.matches(relative);
    for (auto& g : exclude_) g.used = g.used || g.glob.matches(relative);
    if (takes(relative))
      out.taken.push_back(relative);
    else
      out.left_out.push_back(relative.string());
  }
  if (ec) fail_file(folder.string(), "cannot list the folder: " + ec.message());
  std::sort(out.taken.begin(), out.taken.end());
  std::sort(out.left_out.begin(), out.left_out.end());
  return out;
}

std::string FileSelection::describe() const {
  auto patterns = [](const std::vector<Glob>& globs) {
    std::vector<std::string> out;
    for (const auto& g : globs) out.push_back(g.glob.pattern());
    return joined(out, 8);
  };
  std::string out = include_.empty() ? "--include (all files)" : "--include " + patterns(include_);
  return exclude_.empty() ? out : out + " --exclude " + patterns(exclude_);
}

std::vector<std::string> FileSelection::unmatched(bool includes, bool excludes) const {
  std::vector<std::string> out;
  for (const auto& g : include_)
    if (includes && !g.used) out.push_back("--include '" + g.glob.pattern() + "'");
  for (const auto& g : exclude_)
    if (excludes && !g.used) out.push_back("--exclude '" + g.glob.pattern() + "'");
  return out;
}

}  // namespace c3
