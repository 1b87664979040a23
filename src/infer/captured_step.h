// A decoding step replayed as a CUDA graph: one launch instead of the step's hundreds of kernels.
// Compiled against CUDA when LibTorch has it (captured_step.cpp alone sees the define); elsewhere
// capture() says why it cannot, and the caller runs the step eagerly.
#pragma once

#include <c10/core/Device.h>

#include <functional>
#include <memory>
#include <string>

namespace c3 {

class CapturedStep {
 public:
  CapturedStep();
  ~CapturedStep();
  CapturedStep(const CapturedStep&) = delete;
  CapturedStep& operator=(const CapturedStep&) = delete;

  // Runs `step` once, for real, as the warm-up CUDA wants before a capture: on the side stream the
  // capture will use (lazy allocations and library workspaces belong to the stream that captures),
  // ordered after the current stream's work and before what it does next. Elsewhere: just runs it.
  void warm_up(const std::function<void()>& step, const c10::Device& device);
  // Records `step` (after a warm_up on `device`) into a graph on that side stream; nothing executes.
  // Returns an empty string when captured, else why not (not CUDA, a LibTorch without CUDA, a
  // capture error). A step that throws ends the capture, so the stream is usable again for eager steps.
  std::string capture(const std::function<void()>& step, const c10::Device& device);
  void replay();  // the recorded kernels, on the current stream
  bool captured() const;
  void reset();  // forget the graph (before the tensors it recorded change shape)

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace c3
