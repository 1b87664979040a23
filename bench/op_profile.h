// Where a step's time goes, operator by operator: calls and wall time of the top-level ATen
// operators dispatched on this thread while an OpProfile lives (an operator's nested calls count
// inside its time, not again). The callbacks add about a microsecond per call, so read the table
// for its shape and op counts, and time the step without it.
#pragma once

#include <ATen/record_function.h>

#include <chrono>
#include <map>
#include <memory>
#include <string>

namespace c3bench {

class OpProfile {
 public:
  struct Entry {
    int64_t calls = 0;
    double seconds = 0;
  };

  OpProfile() {
    entries_.clear();
    depth_ = 0;
    handle_ = at::addThreadLocalCallback(
        at::RecordFunctionCallback(&OpProfile::start, &OpProfile::end).scopes({at::RecordScope::FUNCTION}));
  }
  ~OpProfile() { at::removeCallback(handle_); }
  OpProfile(const OpProfile&) = delete;
  OpProfile& operator=(const OpProfile&) = delete;

  const std::map<std::string, Entry>& entries() const { return entries_; }

 private:
  struct Started : at::ObserverContext {
    std::chrono::steady_clock::time_point at;
    bool top = false;
  };

  static std::unique_ptr<at::ObserverContext> start(const at::RecordFunction&) {
    auto s = std::make_unique<Started>();
    s->top = depth_++ == 0;
    s->at = std::chrono::steady_clock::now();
    return s;
  }
  static void end(const at::RecordFunction& fn, at::ObserverContext* context) {
    --depth_;
    const auto* s = static_cast<Started*>(context);
    if (!s->top) return;
    Entry& e = entries_[fn.name()];
    ++e.calls;
    e.seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - s->at).count();
  }

  static inline thread_local std::map<std::string, Entry> entries_;
  static inline thread_local int depth_ = 0;
  at::CallbackHandle handle_;
};

}  // namespace c3bench
