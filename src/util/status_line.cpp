#include "c3/util/status_line.h"

#include <unistd.h>

#include <cstdio>

namespace c3 {

StatusLine::StatusLine(bool enabled) : enabled_(enabled && isatty(STDERR_FILENO)) {}

StatusLine::~StatusLine() { clear(); }

void StatusLine::update(const std::string& text) {
  if (!enabled_) return;
  std::fprintf(stderr, "\r\033[K%s", text.c_str());
  std::fflush(stderr);
  shown_ = true;
}

void StatusLine::clear() {
  if (shown_) std::fputs("\r\033[K", stderr), std::fflush(stderr);
  shown_ = false;
}

}  // namespace c3
