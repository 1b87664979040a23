// A one-line status redrawn in place on a terminal (stderr). When stderr is not a terminal (a pipe,
// a SLURM log) the status is logged as an ordinary line every few seconds instead, never with
// terminal escapes. Log lines should call clear() first so they do not mix with it.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

namespace c3 {

// Seconds between status lines logged when stderr is not a terminal (0: none). Set once, from
// runtime.progress_every.
void set_status_log_interval(double seconds);

// "1:02:03" / "2:03"; "?" for an unknown (negative, infinite) time.
std::string format_duration(double seconds);

class StatusLine {
 public:
  explicit StatusLine(bool enabled);
  ~StatusLine();
  void update(const std::string& text);
  void clear();

 private:
  bool terminal_;  // redraw in place
  bool logged_;    // log every interval
  std::chrono::steady_clock::time_point last_logged_;
  bool shown_ = false;
};

// The status line of a batch job (compress, reconstruct, eval): "VERB done/total files | files/s | tokens/s | ETA"
// (terminal only).
class JobProgress {
 public:
  JobProgress(std::string verb, int64_t files, bool enabled, std::string unit = "files");
  void update(int64_t processed, int64_t tokens);
  void clear() { status_.clear(); }  // before a log line
  double seconds() const;            // since construction

 private:
  StatusLine status_;
  std::string verb_, unit_;
  int64_t files_;
  std::chrono::steady_clock::time_point start_;
};

}  // namespace c3
