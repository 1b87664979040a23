// A one-line status redrawn in place on a terminal (stderr); silent when stderr is not a terminal.
// Log lines should call clear() first so they do not mix with it.
#pragma once

#include <string>

namespace c3 {

class StatusLine {
 public:
  explicit StatusLine(bool enabled);
  ~StatusLine();
  void update(const std::string& text);
  void clear();

 private:
  bool enabled_;
  bool shown_ = false;
};

}  // namespace c3
