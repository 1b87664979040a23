#include "c3/util/status_line.h"

#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>

namespace c3 {
namespace {

std::atomic<double> log_interval_seconds{60};

}  // namespace

void set_status_log_interval(double seconds) { log_interval_seconds = seconds; }

StatusLine::StatusLine(bool enabled)
    : terminal_(enabled && isatty(STDERR_FILENO)),
      logged_(enabled && !terminal_ && log_interval_seconds > 0),
      last_logged_(std::chrono::steady_clock::now()) {}

StatusLine::~StatusLine() { clear(); }

void StatusLine::update(const std::string& text) {
  if (logged_) {
    const auto now = std::chrono::steady_clock::now();
    if (std::chrono::duration<double>(now - last_logged_).count() < log_interval_seconds) return;
    last_logged_ = now;
    spdlog::info("{}", text);
    return;
  }
  if (!terminal_) return;
  std::fprintf(stderr, "\r\033[K%s", text.c_str());
  std::fflush(stderr);
  shown_ = true;
}

void StatusLine::clear() {
  if (shown_) std::fputs("\r\033[K", stderr), std::fflush(stderr);
  shown_ = false;
}

std::string format_duration(double seconds) {
  if (!(seconds >= 0) || seconds > 1e8) return "?";
  const auto s = static_cast<int64_t>(seconds + 0.5);
  char buf[32];
  if (s >= 3600)
    std::snprintf(buf, sizeof buf, "%lld:%02lld:%02lld", static_cast<long long>(s / 3600),
                  static_cast<long long>(s / 60 % 60), static_cast<long long>(s % 60));
  else
    std::snprintf(buf, sizeof buf, "%lld:%02lld", static_cast<long long>(s / 60), static_cast<long long>(s % 60));
  return buf;
}

JobProgress::JobProgress(std::string verb, int64_t files, bool enabled, std::string unit)
    : status_(enabled),
      verb_(std::move(verb)),
      unit_(std::move(unit)),
      files_(files),
      start_(std::chrono::steady_clock::now()) {}

double JobProgress::seconds() const {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
}

void JobProgress::update(int64_t processed, int64_t tokens) {
  const double elapsed = std::max(1e-9, seconds());
  const double rate = static_cast<double>(processed) / elapsed;
  const double eta = processed > 0 ? static_cast<double>(files_ - processed) / rate : -1;  // unknown before the first
  status_.update(fmt::format("{} {}/{} {} | {:.2f} {}/s | {:.0f} tokens/s | ETA {}", verb_, processed, files_, unit_,
                             rate, unit_, static_cast<double>(tokens) / elapsed, format_duration(eta)));
}

}  // namespace c3
