#include "c3/eval/eval_data.h"

#include <algorithm>
#include <iostream>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "c3/infer/codec.h"
#include "c3/util/atomic_file.h"
#include "c3/util/error.h"
#include "c3/util/file_selection.h"

using json = nlohmann::json;

namespace c3 {
namespace {

// Each non-blank line of `text` as JSON, with its 1-based line number.
std::vector<std::pair<int64_t, json>> jsonl_lines(const std::string& text, const std::string& name) {
  std::vector<std::pair<int64_t, json>> lines;
  std::istringstream in(text);
  std::string line;
  for (int64_t number = 1; std::getline(in, line); ++number) {
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    try {
      lines.emplace_back(number, json::parse(line));
    } catch (const json::exception& e) {
      fail_file(name + ":" + std::to_string(number), std::string("not valid JSON (") + e.what() + ")");
    }
    if (!lines.back().second.is_object()) fail_file(name + ":" + std::to_string(number), "expected a JSON object");
  }
  return lines;
}

std::string string_field(const json& j, const char* key, const std::string& where) {
  const auto it = j.find(key);
  if (it == j.end()) fail_file(where, std::string("missing the string field \"") + key + "\"");
  if (!it->is_string())
    fail_file(where, std::string("the field \"") + key + "\" holds a " + it->type_name() + " (" +
                         it->dump().substr(0, 40) + "), not a string");
  return it->get<std::string>();
}

std::string id_of(const json& j, int64_t fallback) {
  const auto it = j.find("id");
  if (it == j.end()) return std::to_string(fallback);
  return it->is_string() ? it->get<std::string>() : it->dump();
}

}  // namespace

namespace {

// The pages of a Fox page-OCR JSON list.
std::vector<EvalPage> fox_pages(const std::string& text, const std::string& name) {
  json list;
  try {
    list = json::parse(text);
  } catch (const json::exception& e) {
    fail_file(name, std::string("not valid JSON (") + e.what() + ")");
  }
  std::vector<EvalPage> pages;
  for (size_t i = 0; i < list.size(); ++i) {
    const json& page = list[i];
    const std::string where = name + ": page " + std::to_string(i);
    if (!page.is_object() || !page.contains("conversations") || !page["conversations"].is_array())
      fail_file(where, "expected {\"image\", \"conversations\": [...]} (Fox page-OCR format)");
    const json* answer = nullptr;
    for (const auto& turn : page["conversations"])
      if (turn.is_object() && turn.value("from", "") == "gpt") answer = &turn;
    if (!answer) fail_file(where, "no \"gpt\" turn holding the page's text");
    pages.push_back(
        {page.contains("image") && page["image"].is_string() ? page["image"].get<std::string>() : std::to_string(i),
         string_field(*answer, "value", where)});
  }
  return pages;
}

// A text file (by its name, as compress takes files from folders) is one page, not JSON.
bool is_text_file(const std::filesystem::path& path) {
  return FileSelection(text_file_globs(), {}).takes(path.filename());
}

}  // namespace

EvalData read_eval_data(const std::filesystem::path& path, const std::vector<std::string>& include,
                        const std::vector<std::string>& exclude) {
  const std::string name = path.string();
  std::error_code ec;
  EvalData data;
  auto add = [&](EvalPage page, const std::string& where) {
    if (const std::string problem = unusable_text_reason(page.text); !problem.empty())
      data.rejected.emplace_back(where, problem);
    else
      data.pages.push_back(std::move(page));
  };
  if (std::filesystem::is_directory(path, ec)) {
    FileSelection selection(include.empty() ? text_file_globs() : include, exclude);
    const auto listing = selection.list(path);
    for (const auto& relative : listing.taken)
      add({relative.string(), read_text_file(path / relative)}, (path / relative).string());
    if (listing.taken.empty()) fail_file(name, "holds no files that match " + selection.describe());
  } else if (is_text_file(path)) {
    add({path.filename().string(), read_text_file(path)}, name);
  } else {
    const std::string text = read_text_file(path);
    const size_t first = text.find_first_not_of(" \t\r\n");
    if (first == std::string::npos)
      fail_file(name, "empty (expected Fox page-OCR JSON, JSONL with \"text\", or a text file)");
    if (text[first] == '[') {
      for (auto& page : fox_pages(text, name)) add(page, name + ": page " + page.id);
    } else {
      for (const auto& [number, j] : jsonl_lines(text, name))
        add({id_of(j, number), string_field(j, "text", name + ":" + std::to_string(number))},
            name + ":" + std::to_string(number));
    }
  }
  if (data.pages.empty() && !data.rejected.empty())
    fail_file(data.rejected.front().first,
              data.rejected.front().second + (data.rejected.size() > 1 ? ", and so are all the other pages" : ""));
  if (data.pages.empty()) fail_file(name, "holds no pages");
  std::set<std::string> ids;
  for (const auto& page : data.pages)
    if (!ids.insert(page.id).second) fail_file(name, "the page id '" + page.id + "' appears twice");
  return data;
}

std::vector<ScoredPair> read_scored_pairs(const std::string& path) {
  const std::string name = path == "-" ? "<stdin>" : path;
  const std::string text =
      path == "-" ? std::string(std::istreambuf_iterator<char>(std::cin), {}) : read_text_file(path);
  std::vector<ScoredPair> pairs;
  for (const auto& [number, j] : jsonl_lines(text, name)) {
    const std::string where = name + ":" + std::to_string(number);
    const bool fox = j.contains("label") || j.contains("answer");
    pairs.push_back({id_of(j, number), string_field(j, fox ? "label" : "reference", where),
                     string_field(j, fox ? "answer" : "prediction", where)});
  }
  if (pairs.empty()) fail_file(name, "holds no records (expected JSONL with label/answer or reference/prediction)");
  return pairs;
}

int Buckets::count() const { return static_cast<int>((max_tokens - min_tokens + width - 1) / width); }

int Buckets::index(int64_t tokens) const {
  if (tokens < min_tokens || tokens > max_tokens) return -1;
  return std::min(count() - 1, static_cast<int>((tokens - min_tokens) / width));
}

std::string Buckets::label(int index) const {
  const int64_t lo = min_tokens + index * width;
  return std::to_string(lo) + "-" + std::to_string(std::min(max_tokens, lo + width));
}

void Buckets::check() const {
  if (min_tokens < 0 || max_tokens <= min_tokens || width <= 0)
    throw UsageError("--min-tokens, --max-tokens and --bucket-width must satisfy 0 <= min < max and width > 0");
}

}  // namespace c3
