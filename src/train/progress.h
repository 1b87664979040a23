// Training progress: a one-line status (step, loss, lr, grad norm, tokens/s, ETA) redrawn in
// place on a terminal and never written into pipes; log lines through spdlog; every logged record
// also appended to metrics.jsonl.
#pragma once

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <string>

#include "c3/util/status_line.h"

namespace c3 {

class TrainProgress {
 public:
  // keep_up_to_step: on resume, records of later steps (from the interrupted run) are dropped.
  // An empty metrics_file (the ranks other than 0) records and logs nothing.
  TrainProgress(const std::filesystem::path& metrics_file, bool status_line, int64_t keep_up_to_step);

  void status(const std::string& line);                                     // terminal only
  void record(const nlohmann::json& metrics, const std::string& log_line);  // jsonl + spdlog
  // Whether metrics.jsonl holds a record of this type ("train", "validation") for this step: a
  // rerun of a finished run adds none twice.
  bool recorded(const std::string& type, int64_t step) const { return recorded_.count({type, step}) > 0; }

 private:
  std::ofstream metrics_;
  StatusLine status_;
  std::set<std::pair<std::string, int64_t>> recorded_;
};

}  // namespace c3
