// ZeRO-2's gradient sharding during backward. As soon as autograd has accumulated a parameter's
// gradient (a post-accumulate hook), it counts towards a bucket of parameters with the same owner;
// a complete bucket is flattened (the parameters' own gradients are then dropped) and reduced to its
// owner without waiting, while backward goes on. At most `max_in_flight` buckets are pending (the
// oldest is waited for first; 0: each at once, no overlap). So no rank holds more than its own
// gradients plus the buckets in flight and those not yet complete. Buckets are fixed up front and
// launched in one order, the same on every rank, as collectives must be.
// A hook must fire once per backward: a parameter whose gradient accumulates several times (the
// lm_head, used in every recomputed loss chunk, whose nested backward each accumulates) is named
// in `after_backward` and reduced by finish() instead; a hooked one that fires twice is an error.
#pragma once

#include <torch/torch.h>

#include <deque>
#include <memory>
#include <utility>
#include <vector>

#include "c3/train/communicator.h"

namespace c3 {

class GradientReducer {
 public:
  // params: (parameter, owner rank) in the order the model registers them; backward produces their
  // gradients roughly in reverse, which is how buckets are filled. after_backward: parameters
  // (among them) reduced only after backward, in the last buckets.
  GradientReducer(const std::vector<std::pair<at::Tensor, int>>& params, Communicator& comm, size_t bucket_bytes,
                  size_t max_in_flight, const std::vector<at::Tensor>& after_backward = {});
  ~GradientReducer();  // removes the hooks
  GradientReducer(const GradientReducer&) = delete;
  GradientReducer& operator=(const GradientReducer&) = delete;

  // After a micro-batch's backward: launches the buckets left (a parameter without a gradient sends
  // zeros) and waits for all. Then the owner's parameters hold the sums in .grad; the others none.
  void finish();

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

  std::vector<at::Tensor> params_;
  std::vector<size_t> bucket_of_;
  std::vector<bool> fired_;      // this backward
  std::vector<Bucket> buckets_;  // in launch order
  size_t next_ = 0;              // the next bucket to launch
  size_t hooked_ = 0;            // params_[0, hooked_) have hooks; the rest wait for finish()
  std::deque<InFlight> in_flight_;
  Communicator& comm_;
  size_t max_in_flight_;
};

}  // namespace c3
