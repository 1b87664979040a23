// ZeRO-2's gradient sharding during backward. As soon as autograd has accumulated a parameter's
// gradient (a post-accumulate hook), it counts towards a bucket of parameters with the same owner;
// a complete bucket is flattened (the parameters' own gradients are then dropped) and reduced to its
// owner without waiting, while backward goes on. At most `max_in_flight` buckets are pending (the
// oldest is waited for first; 0: each at once, no overlap). So no rank holds more than its own
// gradients plus the buckets in flight and those not yet complete. Buckets are launched in one
// order, the same on every rank, as collectives must be: at first the reverse of the order given
// (pass parameters in forward order), then, from the second backward on, the order in which the
// gradients became ready in the first, as rank 0 saw it (as PyTorch DDP rebuilds its buckets), so
// that no bucket waits behind a parameter whose gradient comes last (C3's Q, the encoder's input).
// A hook must fire once per backward: a parameter whose gradient accumulates several times (the
// lm_head, used in every recomputed loss chunk, whose nested backward each accumulates) is named
// in `after_backward` and reduced by finish() instead; a hooked one that fires twice is an error.
#pragma once

#include <torch/torch.h>

#include <deque>
#include <memory>
#include <optional>
#include <utility>
#include <vector>

#include "c3/train/communicator.h"

namespace c3 {

class GradientReducer {
 public:
  // params: (parameter, owner rank) in the order the forward pass uses them; backward produces their
  // gradients roughly in reverse, which is how the first backward's buckets are filled.
  // after_backward: parameters (among them) reduced only after backward, in the last buckets.
  // sum_dtype: what the ranks' gradients are summed in (the optimizer's accumulation dtype, float32
  // for bf16 parameters with fp32 masters, so ZeRO-2 sums as stages 0 and 1 do); undefined: each
  // parameter's own. The owner then holds its gradients in that dtype.
  GradientReducer(const std::vector<std::pair<at::Tensor, int>>& params, Communicator& comm, size_t bucket_bytes,
                  size_t max_in_flight, const std::vector<at::Tensor>& after_backward = {},
                  std::optional<at::ScalarType> sum_dtype = std::nullopt);
  ~GradientReducer();  // removes the hooks
  GradientReducer(const GradientReducer&) = delete;
  GradientReducer& operator=(const GradientReducer&) = delete;

  // After a micro-batch's backward: launches the buckets left (a parameter without a gradient sends
  // zeros) and waits for all. Then the owner's parameters hold the sums in .grad; the others none.
  void finish();

  // The parameters (indices into the order given) in bucket launch order; for tests and logs.
  std::vector<size_t> launch_order() const;

 private:
  struct Bucket {
    int owner = 0;
    std::vector<size_t> members;  // indices into params_
    size_t ready = 0;
  };
  struct InFlight {
    size_t bucket;
    at::Tensor flat;
    std::unique_ptr<Communicator::Pending> work;
  };
  void ready(size_t param);  // the hook
  void launch(size_t bucket);
  void complete_oldest();
  // Buckets from `order` (indices into params_, the hooked ones first): each owner fills one of its
  // own, closed when full; the deferred ones get buckets of their own.
  void assign_buckets(const std::vector<size_t>& order);
  void reorder_by_readiness();  // after the first backward, rank 0's ready order on every rank

  std::vector<at::Tensor> params_;  // hooked (reverse of the order given), then deferred
  std::vector<int> owners_;
  std::vector<size_t> given_index_;  // params_[i] is the given order's given_index_[i]
  size_t bucket_bytes_;
  std::vector<size_t> ready_order_;  // the first backward's hook firings
  bool reordered_ = false;
  std::vector<size_t> bucket_of_;
  std::vector<bool> fired_;      // this backward
  std::vector<Bucket> buckets_;  // in launch order
  size_t next_ = 0;              // the next bucket to launch
  size_t hooked_ = 0;            // params_[0, hooked_) have hooks; the rest wait for finish()
  std::deque<InFlight> in_flight_;
  Communicator& comm_;
  size_t max_in_flight_;
  std::optional<at::ScalarType> sum_dtype_;
};

}  // namespace c3
