#include "c3/util/output_record.h"

#include <spdlog/spdlog.h>

#include <nlohmann/json.hpp>
#include <optional>

#include "c3/util/atomic_file.h"
#include "c3/util/error.h"
#include "c3/util/sha256.h"

namespace fs = std::filesystem;
using json = nlohmann::json;

namespace c3 {
namespace {

struct Record {
  std::string job_key;
  std::vector<std::string> digests;  // the bytes c3 wrote (and, while replacing, the ones before); empty: unknown
};

// The record beside `output`, if there is a readable one. Records of c3 0.x before digests held the
// job key alone: those still count as c3's (they predate the rule).
std::optional<Record> read_record(const fs::path& output) {
  std::error_code ec;
  const fs::path file = output_record_file(output);
  if (!fs::is_regular_file(file, ec)) return std::nullopt;
  std::string text;
  try {
    text = read_text_file(file, 1 << 16);
  } catch (const Error&) {
    return std::nullopt;
  }
  if (text.size() == 64 && text.find_first_not_of("0123456789abcdef") == std::string::npos) return Record{text, {}};
  try {
    const json j = json::parse(text);
    Record r{j.at("job_key").get<std::string>(), {j.at("sha256").get<std::string>()}};
    if (j.contains("replaces")) r.digests.push_back(j["replaces"].get<std::string>());
    return r;
  } catch (const json::exception&) {
    return std::nullopt;
  }
}

// What the file at `output` is to its record.
struct RecordCheck {
  // Which of the record's digests the file has: 0 the bytes c3 wrote last, 1 the ones they were
  // replacing (a kill came between record and file); -1 none (or no record, no file). A record
  // without digests (before they were kept) counts as 0.
  int version = -1;
  std::string job_key;
  std::string digest;  // the file's SHA-256, when it was read ("" otherwise)
};

RecordCheck check_record(const fs::path& output) {
  RecordCheck check;
  std::error_code ec;
  if (!fs::is_regular_file(output, ec)) return check;
  const auto record = read_record(output);
  if (!record) return check;
  check.job_key = record->job_key;
  if (record->digests.empty()) return check.version = 0, check;
  check.digest = sha256_hex(read_text_file(output));
  for (size_t i = 0; i < record->digests.size() && check.version < 0; ++i)
    if (record->digests[i] == check.digest) check.version = static_cast<int>(i);
  return check;
}

}  // namespace

fs::path output_record_file(const fs::path& output) {
  return output.parent_path() / ("." + output.filename().string() + ".c3-job");
}

std::string recorded_job_key(const fs::path& output) {
  const RecordCheck check = check_record(output);
  return check.version == 0 ? check.job_key : "";
}

bool has_intact_record(const fs::path& output) { return check_record(output).version >= 0; }

void write_recorded_output(const fs::path& output, std::string_view contents, const std::string& job_key) {
  json record = {{"job_key", job_key}, {"sha256", sha256_hex(contents)}};
  if (const RecordCheck check = check_record(output); check.version >= 0)
    record["replaces"] = check.digest.empty() ? sha256_hex(read_text_file(output)) : check.digest;
  write_file_atomically(output_record_file(output), record.dump() + "\n");
  write_file_atomically(output, contents);
}

std::vector<fs::path> foreign_files(const std::vector<fs::path>& outputs, const WrittenByC3& written_by_c3) {
  std::vector<fs::path> foreign;
  std::error_code ec;
  for (const auto& output : outputs)
    if (fs::exists(output, ec) && (fs::is_directory(output, ec) || !written_by_c3(output))) foreign.push_back(output);
  return foreign;
}

std::string foreign_file_message(const fs::path& path, size_t count) {
  return path.string() + ": exists and is not a file c3 wrote (or it was changed since)" +
         (count > 1 ? "; so do " + std::to_string(count - 1) + " more outputs" : "") +
         " (choose another output, or pass --force to replace " + (count > 1 ? "them" : "it") + ")";
}

std::vector<fs::path> claim_outputs(const std::vector<fs::path>& outputs, const WrittenByC3& written_by_c3,
                                    bool force) {
  auto foreign = foreign_files(outputs, written_by_c3);
  if (foreign.empty()) return foreign;
  std::error_code ec;
  for (const auto& f : foreign)
    if (fs::is_directory(f, ec))
      throw Error(f.string() + ": is a folder, where c3 would write a file (choose another output)");
  if (!force) throw Error(foreign_file_message(foreign.front(), foreign.size()));
  spdlog::warn("--force: replacing {} file{} that c3 did not write, starting with {}", foreign.size(),
               foreign.size() > 1 ? "s" : "", foreign.front().string());
  return foreign;
}

}  // namespace c3
