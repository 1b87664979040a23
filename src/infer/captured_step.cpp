#include "captured_step.h"

#ifdef C3_WITH_CUDA_GRAPHS
#include <ATen/cuda/CUDAGraph.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#endif

namespace c3 {

#ifdef C3_WITH_CUDA_GRAPHS
struct CapturedStep::Graph {
  at::cuda::CUDAGraph graph;
};
#else
struct CapturedStep::Graph {};
#endif

CapturedStep::CapturedStep() = default;
CapturedStep::~CapturedStep() = default;

bool CapturedStep::captured() const { return graph_ != nullptr; }

void CapturedStep::reset() { graph_.reset(); }

std::string CapturedStep::capture(const std::function<void()>& step, const c10::Device& device) {
  graph_.reset();
  if (!device.is_cuda()) return "not a CUDA device";
#ifdef C3_WITH_CUDA_GRAPHS
  try {
    auto graph = std::make_unique<Graph>();
    // Capture needs a stream other than the legacy default one; replays run on the current stream.
    const c10::cuda::CUDAStream side = c10::cuda::getStreamFromPool(false, device.index());
    c10::cuda::getCurrentCUDAStream(device.index()).synchronize();  // what the step reads is ready
    {
      const c10::cuda::CUDAStreamGuard guard(side);
      graph->graph.capture_begin();
      step();
      graph->graph.capture_end();
    }
    graph_ = std::move(graph);
    return "";
  } catch (const std::exception& e) {
    return e.what();
  }
#else
  (void)step;
  return "this LibTorch has no CUDA";
#endif
}

void CapturedStep::replay() {
#ifdef C3_WITH_CUDA_GRAPHS
  graph_->graph.replay();
#endif
}

}  // namespace c3
