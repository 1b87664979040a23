#include "c3/data/dataset.h"

#include <algorithm>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>
#include <random>

#include "c3/util/atomic_file.h"
#include "c3/util/error.h"
#include "c3/util/file_selection.h"

namespace fs = std::filesystem;

namespace c3 {
namespace {

bool has_extension(const fs::path& path, const std::string& ext) { return path.extension() == ext; }

// Calls take(item, where) for each record of a .jsonl file (a JSON value per non-blank line,
// where = "FILE:LINE") or of a .json list (where = "FILE#INDEX").
void for_each_json_record(const fs::path& path,
                          const std::function<void(const nlohmann::json&, const std::string&)>& take) {
  if (has_extension(path, ".jsonl")) {
    std::ifstream in(path);
    if (!in) fail_file(path.string(), "cannot open for reading");
    std::string line;
    for (int64_t number = 1; std::getline(in, line); ++number) {
      if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
      const std::string where = path.string() + ":" + std::to_string(number);
      nlohmann::json j;
      try {
        j = nlohmann::json::parse(line);
      } catch (const nlohmann::json::exception& e) {
        fail_file(where, std::string("not valid JSON (") + e.what() + ")");
      }
      take(j, where);
    }
    if (in.bad()) fail_file(path.string(), "read error");
    return;
  }
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(read_text_file(path));
  } catch (const nlohmann::json::exception& e) {
    fail_file(path.string(), std::string("not valid JSON (") + e.what() + ")");
  }
  if (!j.is_array()) fail_file(path.string(), "expected a JSON list of samples");
  for (size_t i = 0; i < j.size(); ++i) take(j[i], path.string() + "#" + std::to_string(i));
}

std::vector<Document> read_jsonl(const fs::path& path, const std::string& field) {
  std::vector<Document> docs;
  for_each_json_record(path, [&](const nlohmann::json& j, const std::string& where) {
    if (!j.is_object() || !j.contains(field) || !j[field].is_string())
      fail_file(where, "expected an object with a string field \"" + field + "\"");
    docs.push_back({j[field].get<std::string>(), where});
  });
  return docs;
}

std::vector<Document> read_json(const fs::path& path, const std::string& field) {
  std::vector<Document> docs;
  for_each_json_record(path, [&](const nlohmann::json& item, const std::string& where) {
    if (item.is_object() && item.contains("conversations") && item["conversations"].is_array()) {
      const nlohmann::json* context = nullptr;
      for (const auto& turn : item["conversations"])
        if (turn.is_object() && turn.value("from", "") == "context" && turn.contains("value") &&
            turn["value"].is_string())
          context = &turn["value"];
      if (!context) fail_file(where, "conversation has no {\"from\": \"context\", \"value\": TEXT} turn");
      docs.push_back({context->get<std::string>(), where});
    } else if (item.is_object() && item.contains(field) && item[field].is_string()) {
      docs.push_back({item[field].get<std::string>(), where});
    } else {
      fail_file(where, "expected {\"conversations\": [...]} or an object with a string field \"" + field + "\"");
    }
  });
  return docs;
}

// A piece of a document: its text and an estimate of its token count.
struct Unit {
  std::string text;
  int64_t tokens;
};

// Splits `text` after each occurrence of `separator`, keeping it with the piece before.
std::vector<std::string> split_keep(const std::string& text, char separator) {
  std::vector<std::string> parts;
  size_t start = 0;
  while (start < text.size()) {
    size_t end = text.find(separator, start);
    end = end == std::string::npos ? text.size() : end + 1;
    parts.push_back(text.substr(start, end - start));
    start = end;
  }
  return parts;
}

class Cutter {
 public:
  Cutter(const Tokenizer& tokenizer, const SampleOptions& options)
      : tokenizer_(tokenizer), options_(options), rng_(options.seed) {}

  // Cuts `text` (longer than max_tokens) into pieces: lines are kept whole when they fit, else
  // words, else the tokens of a single giant word.
  std::vector<std::string> cut(const std::string& text) {
    std::vector<Unit> units;
    for (auto& line : split_keep(text, '\n')) add_units(line, units);
    std::vector<std::string> pieces;
    std::string current;
    int64_t current_tokens = 0, target = draw_target();
    for (auto& unit : units) {
      if (!current.empty() && current_tokens + unit.tokens > options_.max_tokens) {
        pieces.push_back(std::move(current));
        current.clear(), current_tokens = 0, target = draw_target();
      }
      current += unit.text, current_tokens += unit.tokens;
      if (current_tokens >= target) {
        pieces.push_back(std::move(current));
        current.clear(), current_tokens = 0, target = draw_target();
      }
    }
    if (!current.empty()) pieces.push_back(std::move(current));
    return pieces;
  }

  // Last resort for a piece whose exact count is over the hard limit: cut its tokens.
  std::vector<std::vector<int32_t>> cut_ids(const std::vector<int32_t>& ids, int64_t limit) const {
    std::vector<std::vector<int32_t>> out;
    for (size_t start = 0; start < ids.size(); start += limit)
      out.emplace_back(ids.begin() + start, ids.begin() + std::min(ids.size(), start + limit));
    return out;
  }

 private:
  int64_t draw_target() {
    const auto span = static_cast<uint64_t>(options_.max_tokens - options_.min_tokens + 1);
    return options_.min_tokens + static_cast<int64_t>(rng_() % span);
  }

  void add_units(const std::string& line, std::vector<Unit>& units) {
    const int64_t n = static_cast<int64_t>(tokenizer_.encode_text(line).size());
    if (n <= options_.max_tokens) return units.push_back({line, n});
    for (auto& word : split_keep(line, ' ')) {
      const auto ids = tokenizer_.encode_text(word);
      if (static_cast<int64_t>(ids.size()) <= options_.max_tokens) {
        units.push_back({word, static_cast<int64_t>(ids.size())});
        continue;
      }
      for (const auto& part : cut_ids(ids, options_.max_tokens))
        units.push_back({tokenizer_.decode(part), static_cast<int64_t>(part.size())});
    }
  }

  const Tokenizer& tokenizer_;
  const SampleOptions& options_;
  std::mt19937_64 rng_;
};

}  // namespace

std::vector<Document> read_documents(const fs::path& path, const std::string& text_field) {
  std::error_code ec;
  if (!fs::exists(path, ec)) fail_file(path.string(), "no such file or folder");
  const FileSelection text_files(text_file_globs(), {});  // a folder means the files compress would take
  if (fs::is_directory(path, ec)) {
    FileSelection selection = text_files;
    const auto listing = selection.list(path);
    if (listing.taken.empty()) fail_file(path.string(), "folder has no text files (" + selection.describe() + ")");
    std::vector<Document> docs;
    for (const auto& relative : listing.taken)
      docs.push_back({read_text_file(path / relative), (path / relative).string()});
    return docs;
  }
  if (has_extension(path, ".jsonl")) return read_jsonl(path, text_field);
  if (has_extension(path, ".json")) return read_json(path, text_field);
  if (text_files.takes(path.filename())) return {{read_text_file(path), path.string()}};
  fail_file(path.string(),
            "unknown data format (expected .jsonl, .json, a text file (.txt, .md, ...) or a folder of them)");
}

namespace {

std::string required_string(const nlohmann::json& item, const std::string& field, const std::string& where) {
  if (!item.is_object() || !item.contains(field) || !item[field].is_string())
    fail_file(where, "expected an object with string fields \"context\", \"instruction\" and \"answer\" (no \"" +
                         field + "\")");
  return item[field].get<std::string>();
}

// The authors' conversation: the last context, human and gpt turns.
InstructRecord from_conversation(const nlohmann::json& item, const std::string& where) {
  InstructRecord r;
  r.origin = where;
  bool context = false, human = false, gpt = false;
  for (const auto& turn : item["conversations"]) {
    if (!turn.is_object() || !turn.contains("value") || !turn["value"].is_string()) continue;
    const std::string from = turn.value("from", ""), value = turn["value"].get<std::string>();
    if (from == "context") r.context = value, context = true;
    if (from == "human") r.instruction = value, human = true;
    if (from == "gpt") r.answer = value, gpt = true;
  }
  if (!context || !human || !gpt) fail_file(where, "conversation lacks a context, human or gpt turn");
  for (const std::string marker : {"<image>\n", "<image>"}) {  // where the latents go in the authors' prompt
    const size_t at = r.instruction.find(marker);
    if (at != std::string::npos) r.instruction.erase(at, marker.size());
  }
  return r;
}

}  // namespace

std::vector<InstructRecord> read_instruct_records(const fs::path& path) {
  std::error_code ec;
  if (!fs::exists(path, ec)) fail_file(path.string(), "no such file");
  if (!has_extension(path, ".jsonl") && !has_extension(path, ".json"))
    fail_file(path.string(), "unknown instruct data format (expected .jsonl or the conversations .json)");
  std::vector<InstructRecord> records;
  for_each_json_record(path, [&](const nlohmann::json& item, const std::string& where) {
    if (item.is_object() && item.contains("conversations") && item["conversations"].is_array())
      return records.push_back(from_conversation(item, where));
    records.push_back({required_string(item, "context", where), required_string(item, "instruction", where),
                       required_string(item, "answer", where), where});
  });
  if (records.empty()) fail_file(path.string(), "holds no records");
  return records;
}

std::vector<Sample> make_samples(const std::vector<Document>& documents, const Tokenizer& tokenizer,
                                 const SampleOptions& options) {
  if (options.min_tokens <= 0 || options.max_tokens < options.min_tokens)
    throw UsageError("data.min_tokens and data.max_tokens must satisfy 0 < min <= max (got " +
                     std::to_string(options.min_tokens) + ", " + std::to_string(options.max_tokens) + ")");
  if (options.limit_tokens > 0 && options.split_long && options.max_tokens > options.limit_tokens)
    throw UsageError("data.max_tokens (" + std::to_string(options.max_tokens) + ") is more than the " +
                     std::to_string(options.limit_tokens) + " text tokens that fit in the window (data.max_length)");
  Cutter cutter(tokenizer, options);
  std::vector<Sample> samples;
  int64_t document = -1, piece = 0;  // of the next sample emitted
  auto emit = [&](const std::string& text, std::vector<int32_t> ids, const std::string& origin) {
    if (ids.empty()) return;
    if (options.limit_tokens > 0 && static_cast<int64_t>(ids.size()) > options.limit_tokens) {
      if (!options.split_long)
        fail_file(origin, "sample has " + std::to_string(ids.size()) + " tokens, more than the " +
                              std::to_string(options.limit_tokens) +
                              " that fit in the window (raise data.max_length or set data.split_long=true)");
      for (auto& part : cutter.cut_ids(ids, options.limit_tokens))
        samples.push_back({tokenizer.decode(part), part, origin, document, piece++});
      return;
    }
    samples.push_back({text, std::move(ids), origin, document, piece++});
  };
  // Packing counts tokens additively (document + separator); the exact count is taken once per
  // pack, when it is emitted, so packing many small documents stays linear.
  const std::string separator = "\n\n";
  const auto separator_tokens = static_cast<int64_t>(tokenizer.encode_text(separator).size());
  std::string packed, packed_origin;
  int64_t packed_tokens = 0, packed_document = -1;
  auto flush_packed = [&] {
    if (!packed.empty())
      document = packed_document, piece = 0, emit(packed, tokenizer.encode_text(packed), packed_origin);
    packed.clear(), packed_origin.clear(), packed_tokens = 0;
  };
  for (size_t d = 0; d < documents.size(); ++d) {
    const auto& doc = documents[d];
    auto ids = tokenizer.encode_text(doc.text);
    const auto n = static_cast<int64_t>(ids.size());
    if (n == 0) continue;
    if (n > options.max_tokens && options.split_long) {
      flush_packed();
      document = static_cast<int64_t>(d), piece = 0;
      for (auto& text : cutter.cut(doc.text)) emit(text, tokenizer.encode_text(text), doc.origin);
    } else if (n < options.min_tokens && options.pack_short) {
      if (!packed.empty() && packed_tokens + separator_tokens + n > options.max_tokens) flush_packed();
      if (packed.empty()) {
        packed = doc.text, packed_origin = doc.origin, packed_tokens = n, packed_document = static_cast<int64_t>(d);
      } else {
        packed += separator + doc.text, packed_tokens += separator_tokens + n;
      }
      if (packed_tokens >= options.min_tokens) flush_packed();
    } else {
      flush_packed();
      document = static_cast<int64_t>(d), piece = 0;
      emit(doc.text, std::move(ids), doc.origin);
    }
  }
  flush_packed();
  return samples;
}

std::vector<Sample> split_validation(std::vector<Sample>& samples, int64_t count, uint64_t seed) {
  if (count <= 0) return {};
  if (count >= static_cast<int64_t>(samples.size()))
    throw UsageError("data.validation_samples is " + std::to_string(count) + " but the training data has only " +
                     std::to_string(samples.size()) + " samples (lower it, or give data.validation)");
  return split_off(samples, count, seed);
}

std::vector<int64_t> seeded_permutation(int64_t n, uint64_t seed) {
  std::vector<int64_t> perm(n);
  for (int64_t i = 0; i < n; ++i) perm[i] = i;
  std::mt19937_64 rng(seed);
  for (int64_t i = n - 1; i > 0; --i) std::swap(perm[i], perm[rng() % static_cast<uint64_t>(i + 1)]);
  return perm;
}

Sampler::Sampler(int64_t dataset_size, uint64_t seed, int64_t rank, int64_t world)
    : size_(dataset_size), seed_(seed), rank_(rank), world_(world) {
  if (dataset_size <= 0) throw Error("cannot sample from an empty dataset");
  if (world <= 0 || rank < 0 || rank >= world) throw Error("invalid data-parallel rank/world");
}

int64_t Sampler::index_at(int64_t position) {
  const int64_t epoch = position / size_;
  if (epoch != perm_epoch_)
    perm_ = seeded_permutation(size_, seed_ + static_cast<uint64_t>(epoch)), perm_epoch_ = epoch;
  return perm_[position % size_];
}

std::vector<int64_t> Sampler::next(int64_t batch) {
  std::vector<int64_t> out;
  for (int64_t i = 0; i < batch; ++i) out.push_back(index_at(consumed_ + rank_ * batch + i));
  consumed_ += world_ * batch;
  return out;
}

}  // namespace c3
