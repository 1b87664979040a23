// ZeRO-2's GradientReducer against a recording communicator (rank 0 of 2, reduce = identity): buckets
// leave during backward, in one order, and afterwards only rank 0's parameters hold gradients.
#include <gtest/gtest.h>

#include "c3/train/communicator.h"
#include "c3/util/error.h"
#include "model/recompute.h"
#include "train/gradient_reducer.h"

namespace c3 {
namespace {

class RecordingCommunicator : public LocalCommunicator {
 public:
  int world_size() const override { return 2; }
  std::unique_ptr<Pending> reduce_sum_async(at::Tensor& flat, int root) override {
    launches.push_back({flat.numel(), root, in_backward});
    return LocalCommunicator::reduce_sum_async(flat, root);
  }
  struct Launch {
    int64_t numel;
    int root;
    bool during_backward;
  };
  std::vector<Launch> launches;
  bool in_backward = false;
};

TEST(GradientReducer, BucketsLeaveDuringBackwardAndOnlyOwnersKeepGradients) {
  torch::manual_seed(0);
  // Four layers of 1000 weights, owners alternating; buckets of 4 KB = one fp32 layer each.
  std::vector<at::Tensor> weights;
  std::vector<std::pair<at::Tensor, int>> owned;
  for (int l = 0; l < 4; ++l) {
    weights.push_back(torch::randn({1000}).requires_grad_());
    owned.emplace_back(weights.back(), l % 2);
  }
  RecordingCommunicator comm;
  GradientReducer reducer(owned, comm, 4000, /*max_in_flight=*/1);
  for (int micro = 0; micro < 2; ++micro) {
    at::Tensor x = torch::ones({1000});
    for (const auto& w : weights) x = torch::tanh(x * w);
    comm.in_backward = true;
    x.sum().backward();
    comm.in_backward = false;
    reducer.finish();
  }
  ASSERT_EQ(comm.launches.size(), 8u) << "one bucket per layer and micro-batch";
  for (size_t k = 0; k < 4; ++k) {
    EXPECT_TRUE(comm.launches[k].during_backward) << "bucket " << k << " left while backward ran";
    EXPECT_EQ(comm.launches[k].root, static_cast<int>(3 - k) % 2) << "the last layer's gradient is ready first";
    EXPECT_EQ(comm.launches[k].numel, 1000);
  }
  for (int l = 0; l < 4; ++l) EXPECT_EQ(weights[l].grad().defined(), l % 2 == 0) << "layer " << l;
}

// A weight used in two recomputed regions accumulates its gradient twice per backward (as the
// lm_head does in recomputed loss chunks): hooked, that is an error; deferred, finish() reduces the
// whole sum.
TEST(GradientReducer, AWeightAccumulatedTwicePerBackwardIsReducedAfterBackwardOrRefused) {
  torch::manual_seed(1);
  const at::Tensor head = torch::randn({100}).requires_grad_(), body = torch::randn({100}).requires_grad_();
  auto loss = [&] {
    const at::Tensor h = torch::tanh(body * 2).requires_grad_(true);
    auto chunk = [&](int64_t at) {
      return [&head, at](const at::Tensor& x) { return (x * head.narrow(0, at, 50)).sum().reshape({1}); };
    };
    return recompute(chunk(0), h.narrow(0, 0, 50)).sum() + recompute(chunk(50), h.narrow(0, 50, 50)).sum();
  };
  const std::vector<std::pair<at::Tensor, int>> owned{{body, 0}, {head, 0}};
  {
    RecordingCommunicator comm;
    GradientReducer hooked(owned, comm, 1 << 20, 1);
    EXPECT_THROW(loss().backward(), std::exception) << "a second firing would find its bucket gone";
    head.mutable_grad() = body.mutable_grad() = at::Tensor();
  }
  RecordingCommunicator comm;
  GradientReducer reducer(owned, comm, 1 << 20, 1, {head});
  loss().backward();
  reducer.finish();
  ASSERT_EQ(comm.launches.size(), 2u);
  EXPECT_EQ(comm.launches[1].during_backward, false) << "the deferred bucket leaves after backward";
  // d/d head of sum(h * head) over both chunks is h itself (the reduce is the identity here).
  EXPECT_TRUE(head.grad().allclose(torch::tanh(body.detach() * 2))) << "the whole sum of both chunks";
  EXPECT_TRUE(body.grad().defined());
}

}  // namespace
}  // namespace c3
