#include "c3/eval/result_journal.h"

#include <spdlog/spdlog.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>

#include "c3/util/atomic_file.h"
#include "c3/util/error.h"

namespace fs = std::filesystem;
using json = nlohmann::json;

namespace c3 {

ResultJournal::ResultJournal(fs::path path, const json& key, const StillCurrent& still_current, std::string noun)
    : path_(std::move(path)), noun_(std::move(noun)), key_(key) {
  std::error_code ec;
  if (fs::exists(path_, ec)) done_ = read_current(key, still_current);
  if (!done_.empty())
    spdlog::info("resuming: {} {} from the interrupted run in {}", done_.size(), noun_, path_.string());
}

// On the first result: the file is rewritten with the key and what was kept (a cut-off line and
// out-of-date results go), then appended to. Until then an earlier journal stays as it was.
void ResultJournal::open() {
  make_folder(path_.parent_path());
  std::string kept = json{{"resume_key", key_}}.dump() + "\n";
  for (const auto& r : done_) kept += r.dump() + "\n";
  write_file_atomically(path_, kept);
  file_ = std::fopen(path_.c_str(), "a");
  if (!file_) fail_file(path_.string(), "cannot open for appending");
}

ResultJournal::~ResultJournal() {
  if (file_) std::fclose(file_);
}

void ResultJournal::append(const std::vector<json>& results) {
  if (results.empty()) return;
  if (!file_) open();
  appended_ += results.size();
  std::string lines;
  for (const auto& r : results) lines += r.dump() + "\n";
  if (std::fwrite(lines.data(), 1, lines.size(), file_) != lines.size() || std::fflush(file_) != 0)
    fail_file(path_.string(), std::string("write failed: ") + std::strerror(errno));
  ::fsync(fileno(file_));
}

void ResultJournal::remove() {
  if (file_) std::fclose(file_);
  file_ = nullptr;
  std::error_code ec;
  fs::remove(path_, ec);
}

ResultJournal::StillCurrent ResultJournal::input_unchanged(std::map<std::string, std::string> digests,
                                                           std::string id_field, std::string digest_field) {
  return [digests = std::move(digests), id_field = std::move(id_field),
          digest_field = std::move(digest_field)](const json& r) {
    const auto it = digests.find(r.at(id_field).get<std::string>());
    return it != digests.end() && it->second == r.at(digest_field).get<std::string>();
  };
}

bool ResultJournal::written_by_c3(const fs::path& path) {
  std::ifstream in(path);
  std::string line;
  if (!std::getline(in, line)) return false;
  try {
    const json header = json::parse(line);
    return header.is_object() && header.contains("resume_key");
  } catch (const json::exception&) {
    return false;
  }
}

std::vector<json> ResultJournal::read_current(const json& key, const StillCurrent& still_current) const {
  std::ifstream in(path_);
  std::string line;
  if (!std::getline(in, line)) return {};
  json header;
  try {
    header = json::parse(line);
  } catch (const json::exception&) {
    fail_file(path_.string(), "not a c3 eval journal (pass --force to start over)");
  }
  std::vector<json> found;
  while (std::getline(in, line)) {
    try {
      found.push_back(json::parse(line));
    } catch (const json::exception&) {
      break;  // the line a kill cut short; what follows it cannot exist
    }
  }
  if (!header.is_object() || header.value("resume_key", json()) != key) {
    if (!found.empty())
      spdlog::warn("{}: its {} {} were made with another model or settings: redoing them", path_.string(), found.size(),
                   noun_);
    return {};
  }
  std::vector<json> current;
  for (auto& r : found) {
    bool keep = false;
    try {
      keep = still_current(r);
    } catch (const json::exception&) {  // a line of some other shape: redone
    }
    if (keep) current.push_back(std::move(r));
  }
  if (current.size() < found.size())
    spdlog::info("{}: {} {} are out of date (their input changed or left the selection): redoing them", path_.string(),
                 found.size() - current.size(), noun_);
  return current;
}

}  // namespace c3
