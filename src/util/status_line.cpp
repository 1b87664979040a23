#include "c3/util/status_line.h"

#include <spdlog/spdlog.h>
#include <unistd.h>

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

}  // namespace c3
