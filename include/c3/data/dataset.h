// Training data: documents read from JSONL / the authors' conversations JSON / .txt files, cut
// into samples of a target token range (or packed when short), split for validation, and visited
// in a seeded order that a saved position restores exactly.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "c3/tokenizer/tokenizer.h"

namespace c3 {

struct Document {
  std::string text;
  std::string origin;  // "FILE:LINE", "FILE#ITEM" or "FILE", for error messages
};

// `path` may be: a .jsonl file (one JSON object per line with a string field `text_field`), a
// .json file (the authors' list of {"conversations": [{"from": "context", "value": TEXT}, ...]},
// or a list of objects with `text_field`), a .txt file (one document), or a folder (every .txt
// file under it, in sorted order). Errors name the file (and line).
std::vector<Document> read_documents(const std::filesystem::path& path, const std::string& text_field = "text");

// A question (or any instruction) about a context, with its answer: what the instruct task trains
// on and `c3 eval --task instruct` scores.
struct InstructRecord {
  std::string context, instruction, answer;
  std::string origin;  // "FILE:LINE" or "FILE#ITEM"
};

// A .jsonl file of {"context", "instruction", "answer"} objects, or the authors' conversations
// .json ({"conversations": [{"from": "context"}, {"from": "human"}, {"from": "gpt"}]}: the human
// turn, less its "<image>" marker, is the instruction; the gpt turn the answer). Errors name the
// file and line (item).
std::vector<InstructRecord> read_instruct_records(const std::filesystem::path& path);

struct SampleOptions {
  int64_t min_tokens = 256;  // target range for pieces cut from long documents
  int64_t max_tokens = 1024;
  bool split_long = true;    // cut documents longer than max_tokens (else: error)
  bool pack_short = false;   // join consecutive documents shorter than min_tokens (with a blank line)
  int64_t limit_tokens = 0;  // hard limit the model's window imposes (0: none)
  uint64_t seed = 0;         // draws the piece lengths
};

struct Sample {
  std::string text;
  std::vector<int32_t> ids;  // tokenizer.encode(text)
  std::string origin;
  // Which document it was cut from (its index in make_samples' input; a pack: its first's) and
  // which piece of it: pieces (d, j) and (d, j + 1) are consecutive text.
  int64_t document = -1, piece = 0;
};

std::vector<Sample> make_samples(const std::vector<Document>& documents, const Tokenizer& tokenizer,
                                 const SampleOptions& options);

// Moves a seeded random `count` samples out of `samples` into the returned validation set.
std::vector<Sample> split_validation(std::vector<Sample>& samples, int64_t count, uint64_t seed);

// Seeded Fisher-Yates with our own uniform draw, so orders are the same on every platform.
std::vector<int64_t> seeded_permutation(int64_t n, uint64_t seed);

// Moves `count` (< items.size()) items chosen by `seed` out of `items` into the result; both keep
// their order.
template <typename T>
std::vector<T> split_off(std::vector<T>& items, int64_t count, uint64_t seed) {
  if (count <= 0) return {};
  const auto perm = seeded_permutation(static_cast<int64_t>(items.size()), seed ^ 0x9e3779b97f4a7c15ull);
  std::vector<bool> chosen(items.size(), false);
  for (int64_t i = 0; i < count; ++i) chosen[static_cast<size_t>(perm[static_cast<size_t>(i)])] = true;
  std::vector<T> kept, taken;
  for (size_t i = 0; i < items.size(); ++i) (chosen[i] ? taken : kept).push_back(std::move(items[i]));
  items = std::move(kept);
  return taken;
}

// A deterministic endless stream of sample indices: epoch e visits a permutation drawn from
// (seed, e). With several data-parallel ranks each global micro-batch is world x batch
// consecutive indices of that stream, and rank r takes its r-th slice.
class Sampler {
 public:
  Sampler(int64_t dataset_size, uint64_t seed, int64_t rank = 0, int64_t world = 1);
  std::vector<int64_t> next(int64_t batch);       // for this rank; advances by world x batch
  int64_t consumed() const { return consumed_; }  // stream position (all ranks)
  void set_consumed(int64_t consumed) { consumed_ = consumed; }
  int64_t epoch() const { return consumed_ / size_; }
  int64_t index_at(int64_t position);  // the sample at a stream position (a rank's slice aside)

 private:
  int64_t size_;
  uint64_t seed_;
  int64_t rank_, world_;
  int64_t consumed_ = 0;
  int64_t perm_epoch_ = -1;
  std::vector<int64_t> perm_;
};

}  // namespace c3
