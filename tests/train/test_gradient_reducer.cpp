// ZeRO-2's GradientReducer against a recording communicator (rank 0 of 2, reduce = identity): buckets
// leave during backward, in one order, and afterwards only rank 0's parameters hold gradients.
#include <gtest/gtest.h>

#include <cmath>
#include <optional>

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

// Rank 0 of 2 whose partner's gradients are all `other`: the sum is taken in the flat bucket's
// dtype, as Gloo and NCCL sum in the dtype they are given.
class SummingCommunicator : public LocalCommunicator {
 public:
  explicit SummingCommunicator(double other) : other_(other) {}
  int world_size() const override { return 2; }
  std::unique_ptr<Pending> reduce_sum_async(at::Tensor& flat, int root) override {
    dtypes.push_back(flat.scalar_type());
    flat.add_(at::full_like(flat, other_));
    return LocalCommunicator::reduce_sum_async(flat, root);
  }
  std::vector<at::ScalarType> dtypes;

 private:
  double other_;
};

// bf16 gradients with fp32 sums (stages 0 and 1 all-reduce the fp32 accumulators): ZeRO-2 sends them
// in fp32 too, so 1 + 2^-9 survives the sum across ranks, which a bf16 sum rounds back to 1.
TEST(GradientReducer, Bfloat16GradientsAreSummedAcrossRanksInTheOptimizersSumDtype) {
  const double tiny = std::ldexp(1.0, -9);
  for (const bool fp32_sums : {true, false}) {
    at::Tensor w = torch::ones({8}, at::kBFloat16).requires_grad_();
    SummingCommunicator comm(tiny);
    GradientReducer reducer({{w, 0}}, comm, 4000, 0, {},
                            fp32_sums ? std::optional<at::ScalarType>(at::kFloat) : std::nullopt);
    w.sum().backward();  // a gradient of 1 on this rank
    reducer.finish();
    ASSERT_EQ(comm.dtypes.size(), 1u);
    EXPECT_EQ(comm.dtypes[0], fp32_sums ? at::kFloat : at::kBFloat16);
    const double got = w.grad().to(at::kDouble)[0].item<double>();
    EXPECT_EQ(got, fp32_sums ? 1.0 + tiny : 1.0) << (fp32_sums ? "summed in fp32" : "a bf16 sum rounds");
  }
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

// Shaped like C3: an input parameter (Q) feeds tower A (the encoder), a late parameter (the
// projector) joins it to tower B (the decoder), and they are given in registration order (A, B, Q,
// projector), which is not the order backward makes their gradients ready (B, projector, A, Q). The
// first backward fills buckets in the given order; from the second on, buckets follow the order the
// first one saw, so every bucket leaves while backward runs and no rank holds the encoder's gradients
// until Q's arrives. Another rank's view of that order is replaced by rank 0's.
class OrderCommunicator : public RecordingCommunicator {
 public:
  std::unique_ptr<Pending> reduce_sum_async(at::Tensor& flat, int root) override {
    if (!q_ready) ++before_q;
    return RecordingCommunicator::reduce_sum_async(flat, root);
  }
  void broadcast(std::vector<at::Tensor>& tensors, int root) override {
    broadcasts.push_back(root);
    if (!rank0_order.empty()) tensors[0].copy_(at::tensor(rank0_order, at::kLong));
  }
  std::vector<int> broadcasts;
  bool q_ready = false;              // Q's gradient is computed (the end of backward)
  int before_q = 0;                  // buckets launched before that
  std::vector<int64_t> rank0_order;  // what rank 0 sends, when set (indices into the reducer's own order)
};

struct TwoTowers {
  std::vector<at::Tensor> a, b;
  at::Tensor q, projector;
  std::vector<std::pair<at::Tensor, int>> registered;  // A, B, Q, projector; owners alternate
  bool q_hooked = false;
  TwoTowers() {
    torch::manual_seed(2);
    for (int l = 0; l < 3; ++l) a.push_back(torch::randn({1000}).mul_(0.5).requires_grad_());
    for (int l = 0; l < 3; ++l) b.push_back(torch::randn({1000}).mul_(0.5).requires_grad_());
    q = torch::randn({1000}).requires_grad_(), projector = torch::randn({1000}).mul_(0.5).requires_grad_();
    int owner = 0;
    for (const auto* tower : {&a, &b})
      for (const auto& w : *tower) registered.emplace_back(w, owner++ % 2);
    registered.emplace_back(q, owner++ % 2), registered.emplace_back(projector, owner++ % 2);
  }
  void backward(OrderCommunicator& comm) {
    for (auto* w : {&q, &projector}) w->mutable_grad() = at::Tensor();
    for (auto* tower : {&a, &b})
      for (auto& w : *tower) w.mutable_grad() = at::Tensor();
    comm.q_ready = false, comm.before_q = 0;
    if (!q_hooked) q.register_hook([&comm](const at::Tensor&) { comm.q_ready = true; }), q_hooked = true;
    at::Tensor x = q;
    for (const auto& w : a) x = torch::tanh(x * w);
    x = x * projector;
    for (const auto& w : b) x = torch::tanh(x * w);
    comm.in_backward = true;
    x.sum().backward();
    comm.in_backward = false;
  }
};

TEST(GradientReducer, BucketsFollowTheOrderGradientsBecameReadyOnTheFirstBackward) {
  TwoTowers m;
  OrderCommunicator comm;
  GradientReducer reducer(m.registered, comm, 4000, /*max_in_flight=*/1);
  m.backward(comm);
  EXPECT_EQ(comm.before_q, 1) << "in the given order only the projector's bucket leaves before Q's gradient";
  reducer.finish();
  EXPECT_EQ(comm.broadcasts, std::vector<int>{0}) << "rank 0's order, once";
  // Ready order: B from the last layer (given 5, 4, 3), the projector (7), A from its last (2, 1),
  // then Q (6) and A's first layer (0), both from the one node that multiplies them.
  EXPECT_EQ(reducer.launch_order(), (std::vector<size_t>{5, 4, 3, 7, 2, 1, 6, 0}));
  for (int micro = 0; micro < 2; ++micro) {
    comm.launches.clear();
    m.backward(comm);
    EXPECT_EQ(comm.before_q, 6) << "every bucket but Q's and A's first layer's leaves before Q's gradient exists";
    reducer.finish();
    ASSERT_EQ(comm.launches.size(), 8u);
  }
  EXPECT_EQ(comm.broadcasts.size(), 1u) << "the order is settled once";
}

TEST(GradientReducer, EveryRankTakesRankZerosOrder) {
  TwoTowers m;
  OrderCommunicator comm;
  comm.rank0_order = {7, 6, 5, 4, 3, 2, 1, 0};  // the reverse of the order given, as rank 0 reports it
  GradientReducer reducer(m.registered, comm, 4000, /*max_in_flight=*/1);
  m.backward(comm);
  reducer.finish();
  // The reducer's own order is the reverse of the given one, so 7..0 is the given order 0..7.
  EXPECT_EQ(reducer.launch_order(), (std::vector<size_t>{0, 1, 2, 3, 4, 5, 6, 7}));
}

}  // namespace
}  // namespace c3
