// SIGINT and SIGTERM (Ctrl-C, scancel, a scheduler's preemption) as a request to stop at the next
// safe point instead of dying mid-write: while a StopSignals lives, the signals only raise a flag;
// long loops (training steps, batch jobs, decoding) look at it, finish what they must, say what
// was done and exit 128 + the signal.
#pragma once

#include <csignal>
#include <stdexcept>
#include <string>

namespace c3 {

class StopSignals {
 public:
  StopSignals();   // installs the handlers (and clears the flag)
  ~StopSignals();  // restores the ones before
  StopSignals(const StopSignals&) = delete;
  StopSignals& operator=(const StopSignals&) = delete;

  int received() const;  // the signal received, 0 for none

 private:
  struct sigaction old_int_ {
  }, old_term_{};
};

// Thrown by work that a stop signal cut short (a decoding loop); what it had done is lost, what
// finished before it is kept.
class Interrupted : public std::runtime_error {
 public:
  explicit Interrupted(int signal) : std::runtime_error("interrupted by " + signal_name(signal)), signal_(signal) {}
  int signal() const { return signal_; }
  static std::string signal_name(int signal);  // "SIGINT", "SIGTERM", "signal N"

 private:
  int signal_;
};

// Throws Interrupted when `stop` (may be null) has received a signal.
void throw_if_stopped(const StopSignals* stop);

}  // namespace c3
