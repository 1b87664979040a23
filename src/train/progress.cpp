#include "progress.h"

#include <spdlog/spdlog.h>

#include <cstdio>
#include <sstream>

#include "c3/util/atomic_file.h"
#include "c3/util/error.h"

namespace fs = std::filesystem;

namespace c3 {

TrainProgress::TrainProgress(const fs::path& metrics_file, bool status_line, int64_t keep_up_to_step)
    : status_(status_line) {
  if (metrics_file.empty()) return;
  std::error_code ec;
  if (fs::exists(metrics_file, ec)) {
    // Drop what the interrupted run logged after its last checkpoint, so the file reads as one run.
    std::istringstream lines(read_text_file(metrics_file));
    std::string kept, line;
    while (std::getline(lines, line)) {
      try {
        const auto j = nlohmann::json::parse(line);
        if (j.value("step", int64_t{0}) > keep_up_to_step) continue;
        kept += line + "\n";
        recorded_.emplace(j.value("type", std::string()), j.value("step", int64_t{0}));
      } catch (const nlohmann::json::exception&) {
        // a line cut short by a crash
      }
    }
    write_file_atomically(metrics_file, kept);
  }
  metrics_.open(metrics_file, std::ios::app);
  if (!metrics_) fail_file(metrics_file.string(), "cannot open for appending");
}

void TrainProgress::status(const std::string& line) { status_.update(line); }

void TrainProgress::record(const nlohmann::json& metrics, const std::string& log_line) {
  if (!metrics_.is_open()) return;
  metrics_ << metrics.dump() << "\n";
  recorded_.emplace(metrics.value("type", std::string()), metrics.value("step", int64_t{0}));
  metrics_.flush();
  status_.clear();
  if (!log_line.empty()) spdlog::info("{}", log_line);
}

}  // namespace c3
