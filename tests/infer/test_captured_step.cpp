// The CUDA graph of the decoding step (src/infer/captured_step.h): a warm-up that is a real step, a
// capture that records without executing, replays, and a step that fails mid-capture leaving the
// device usable for the eager fallback. On the CPU: the warm-up runs, capture says why it cannot.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <stdexcept>

#include "infer/captured_step.h"
#include "test_support.h"

namespace c3 {
namespace {

using testing::HasSubstr;

class CapturedStepDevice : public test::DeviceDtypeTest {};

TEST_P(CapturedStepDevice, WarmUpRunsCaptureRecordsReplaysRunAndAFailedCaptureLeavesEagerStepsWorking) {
  const auto [device, dtype] = GetParam();
  torch::NoGradGuard no_grad;
  at::Tensor counter = at::zeros({4}, at::TensorOptions().dtype(dtype).device(device));
  const auto step = [&] { counter.add_(1); };
  CapturedStep graph;
  graph.warm_up(step, device);
  EXPECT_EQ(counter.sum().item<double>(), 4.0) << "the warm-up is a real step";

  // A step that fails inside the capture: capture says why, and the device runs eager work after it.
  const std::string failed = graph.capture(
      [&] {
        counter.add_(1);
        throw std::runtime_error("no such kernel");
      },
      device);
  EXPECT_FALSE(graph.captured());
  if (device.is_cuda()) {
    EXPECT_THAT(failed, HasSubstr("no such kernel"));
  } else {
    EXPECT_EQ(failed, "not a CUDA device");
  }
  step();
  EXPECT_EQ(counter.sum().item<double>(), 8.0) << "the failed capture executed nothing; the eager step ran";

  const std::string why = graph.capture(step, device);
  if (!device.is_cuda()) {
    EXPECT_EQ(why, "not a CUDA device");
    EXPECT_FALSE(graph.captured());
    return;
  }
  ASSERT_EQ(why, "");
  ASSERT_TRUE(graph.captured());
  EXPECT_EQ(counter.sum().item<double>(), 8.0) << "capturing executes nothing";
  graph.replay();
  graph.replay();
  EXPECT_EQ(counter.sum().item<double>(), 16.0) << "each replay is one step";
  graph.reset();
  EXPECT_FALSE(graph.captured());
}

INSTANTIATE_TEST_SUITE_P(DeviceDtype, CapturedStepDevice, testing::ValuesIn(test::device_dtype_params()),
                         test::param_name);

}  // namespace
}  // namespace c3
