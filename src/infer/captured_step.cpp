#include "captured_step.h"

#ifdef C3_WITH_CUDA_GRAPHS
#include <ATen/cuda/CUDAEvent.h>
#include <ATen/cuda/CUDAGraph.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <cuda_runtime_api.h>

#include <optional>
#endif

namespace c3 {

#ifdef C3_WITH_CUDA_GRAPHS
struct CapturedStep::Impl {
  std::optional<c10::cuda::CUDAStream> side;  // warm-up and capture; not the legacy default stream
  std::unique_ptr<at::cuda::CUDAGraph> graph;

  c10::cuda::CUDAStream side_stream(const c10::Device& device) {
    if (!side || side->device_index() != device.index()) side = c10::cuda::getStreamFromPool(false, device.index());
    return *side;
  }

  // Runs `fn` with the side stream current, after the current stream's queued work and before its next.
  template <class F>
  void on_side_stream(const c10::Device& device, F&& fn) {
    const c10::cuda::CUDAStream current = c10::cuda::getCurrentCUDAStream(device.index());
    const c10::cuda::CUDAStream stream = side_stream(device);
    at::cuda::CUDAEvent ready, done;
    ready.record(current);
    ready.block(stream);
    {
      const c10::cuda::CUDAStreamGuard guard(stream);
      fn();
    }
    done.record(stream);
    done.block(current);
  }
};
#else
struct CapturedStep::Impl {};
#endif

CapturedStep::CapturedStep() : impl_(std::make_unique<Impl>()) {}
CapturedStep::~CapturedStep() = default;

bool CapturedStep::captured() const {
#ifdef C3_WITH_CUDA_GRAPHS
  return impl_->graph != nullptr;
#else
  return false;
#endif
}

void CapturedStep::reset() {
#ifdef C3_WITH_CUDA_GRAPHS
  impl_->graph.reset();
#endif
}

void CapturedStep::warm_up(const std::function<void()>& step, const c10::Device& device) {
#ifdef C3_WITH_CUDA_GRAPHS
  if (device.is_cuda()) return impl_->on_side_stream(device, step);
#endif
  step();
}

std::string CapturedStep::capture(const std::function<void()>& step, const c10::Device& device) {
  reset();
  if (!device.is_cuda()) return "not a CUDA device";
#ifdef C3_WITH_CUDA_GRAPHS
  std::string why;
  try {
    auto graph = std::make_unique<at::cuda::CUDAGraph>();
    impl_->on_side_stream(device, [&] {
      graph->capture_begin();
      try {
        step();
      } catch (const std::exception& e) {
        why = std::string("the step failed during capture: ") + e.what();
        // End the capture whatever it recorded: a stream left capturing fails every later launch,
        // the eager fallback's included. The invalidated capture's own error is expected here.
        try {
          graph->capture_end();
        } catch (const std::exception&) {
        }
        (void)cudaGetLastError();
        return;
      }
      graph->capture_end();
    });
    if (why.empty()) impl_->graph = std::move(graph);
  } catch (const std::exception& e) {
    why = std::string("capture failed: ") + e.what();
  }
  return why;
#else
  (void)step;
  return "this LibTorch has no CUDA";
#endif
}

void CapturedStep::replay() {
#ifdef C3_WITH_CUDA_GRAPHS
  impl_->graph->replay();
#endif
}

}  // namespace c3
