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

  // Records `step` (which must have run eagerly once on `device`, so that lazy allocations and
  // library handles exist) into a graph on a side stream; nothing executes. Returns an empty string
  // when captured, else why not (not CUDA, a LibTorch without CUDA, a capture error).
  std::string capture(const std::function<void()>& step, const c10::Device& device);
  void replay();  // the recorded kernels, on the current stream
  bool captured() const;
  void reset();  // forget the graph (before the tensors it recorded change shape)

 private:
  struct Graph;
  std::unique_ptr<Graph> graph_;
};

}  // namespace c3
