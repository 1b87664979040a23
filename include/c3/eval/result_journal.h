// The results an evaluation has finished, logged so that a killed run resumes where it stopped:
// a JSONL file whose first line holds the run's key ({"resume_key": ...}) and every later line one
// result, appended and fsynced as results finish. A rerun keeps the results made under the same key
// that the mode still finds current (their page or document unchanged) and redoes the others.
// Every eval mode journals through it (pages.partial.jsonl, targets.partial.jsonl, ...).
#pragma once

#include <cstdio>
#include <filesystem>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace c3 {

class ResultJournal {
 public:
  using StillCurrent = std::function<bool(const nlohmann::json& result)>;
  // The usual test: a result is current when its `id_field` names an input of `digests` (id ->
  // SHA-256 of what it holds now) whose digest is the result's `digest_field`.
  static StillCurrent input_unchanged(std::map<std::string, std::string> digests, std::string id_field,
                                      std::string digest_field);

  // Reads what an interrupted run left at `path` (if anything) and keeps the current results. The
  // file (and its folder) is written only with the first result appended: the key, the results
  // kept, the new ones. `noun` names the results in log lines ("page results"). A file that is not
  // a journal is refused.
  ResultJournal(std::filesystem::path path, const nlohmann::json& key, const StillCurrent& still_current,
                std::string noun);
  ~ResultJournal();
  ResultJournal(const ResultJournal&) = delete;
  ResultJournal& operator=(const ResultJournal&) = delete;

  const std::vector<nlohmann::json>& done() const { return done_; }  // kept from the interrupted run
  size_t results() const { return done_.size() + appended_; }        // results it holds
  const std::filesystem::path& path() const { return path_; }

  void append(const std::vector<nlohmann::json>& results);  // written and fsynced before it returns
  void remove();                                            // the run finished: its outputs hold everything

  // Whether `path` is a journal (its first line holds a resume key): c3 wrote it.
  static bool written_by_c3(const std::filesystem::path& path);

 private:
  std::vector<nlohmann::json> read_current(const nlohmann::json& key, const StillCurrent& still_current) const;
  void open();

  std::filesystem::path path_;
  std::string noun_;
  nlohmann::json key_;
  std::FILE* file_ = nullptr;
  std::vector<nlohmann::json> done_;
  size_t appended_ = 0;
};

}  // namespace c3
