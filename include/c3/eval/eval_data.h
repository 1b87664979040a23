// What `c3 eval` reads: benchmark pages (Fox's page-OCR JSON, or JSONL with id and text) and
// prediction files to score (JSONL with label/answer or reference/prediction), and how pages are
// bucketed by length.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <utility>
#include <vector>

namespace c3 {

struct EvalPage {
  std::string id;
  std::string text;
};

struct EvalData {
  std::vector<EvalPage> pages;
  // Pages that cannot be evaluated, as compress refuses documents (not UTF-8, empty): (where:
  // "FILE" or "FILE: page ID", why).
  std::vector<std::pair<std::string, std::string>> rejected;
};

// Fox's en_page_ocr.json (a JSON list of {"image", "conversations": [..., {"from": "gpt",
// "value": TEXT}]}; id = the image name), JSONL with "text" and "id" (default: the line number),
// one text file (.txt, .md, ...: one page, id = its name), or a folder of text files taken as
// compress takes them (`include`, default text_file_globs(), and `exclude`; id = the path below the
// folder). The text is taken raw, as the spec says. Errors name the file (and line).
EvalData read_eval_data(const std::filesystem::path& path, const std::vector<std::string>& include = {},
                        const std::vector<std::string>& exclude = {});

struct ScoredPair {
  std::string id;
  std::string reference;   // the ground truth
  std::string prediction;  // the model's output
};
// JSONL with "label" + "answer" or "reference" + "prediction" (optional "id"); "-" is stdin.
std::vector<ScoredPair> read_scored_pairs(const std::string& path);

// Buckets of `width` text tokens over [min_tokens, max_tokens]: [min, min+width), ... The last
// bucket also holds max_tokens itself (a 1300-token page falls in 1200-1300).
struct Buckets {
  int64_t min_tokens = 600, max_tokens = 1300, width = 100;
  int count() const;
  int index(int64_t tokens) const;     // -1 outside [min_tokens, max_tokens]
  std::string label(int index) const;  // "600-700"
  void check() const;                  // UsageError unless 0 <= min < max and width > 0
};

}  // namespace c3
