#include "gradient_reducer.h"

#include <torch/csrc/autograd/function_hook.h>
#include <torch/csrc/autograd/variable.h>

#include <algorithm>
#include <map>
#include <numeric>

#include "c3/util/error.h"

namespace c3 {
namespace {

struct ReadyHook : torch::autograd::PostAccumulateGradHook {
  ReadyHook(std::function<void()> f) : on_ready(std::move(f)) {}
  void operator()(const torch::autograd::Variable&) override { on_ready(); }
  std::function<void()> on_ready;
};

}  // namespace

GradientReducer::GradientReducer(const std::vector<std::pair<at::Tensor, int>>& params, Communicator& comm,
                                 size_t bucket_bytes, size_t max_in_flight,
                                 const std::vector<at::Tensor>& after_backward, std::optional<at::ScalarType> sum_dtype)
    : bucket_bytes_(bucket_bytes),
      bucket_of_(params.size()),
      fired_(params.size(), false),
      comm_(comm),
      max_in_flight_(max_in_flight),
      sum_dtype_(sum_dtype) {
  auto deferred = [&](const at::Tensor& p) {
    return std::any_of(after_backward.begin(), after_backward.end(), [&](const at::Tensor& d) { return d.is_same(p); });
  };
  // Backward order, roughly: the last given first, the deferred ones after all.
  for (const bool later : {false, true}) {
    for (size_t k = params.size(); k-- > 0;)
      if (deferred(params[k].first) == later)
        params_.push_back(params[k].first), owners_.push_back(params[k].second), given_index_.push_back(k);
    if (!later) hooked_ = params_.size();
  }
  std::vector<size_t> order(params_.size());
  std::iota(order.begin(), order.end(), size_t{0});
  assign_buckets(order);
  for (size_t i = 0; i < hooked_; ++i)
    torch::autograd::impl::set_post_acc_grad_hooks(params_[i], std::make_unique<ReadyHook>([this, i] { ready(i); }));
}

void GradientReducer::assign_buckets(const std::vector<size_t>& order) {
  buckets_.clear();
  std::map<int, Bucket> open;
  std::map<int, size_t> open_bytes;
  auto close = [&](int owner) {
    for (size_t m : open[owner].members) bucket_of_[m] = buckets_.size();
    buckets_.push_back(std::move(open[owner]));
    open.erase(owner), open_bytes[owner] = 0;
  };
  auto close_all = [&] {
    while (!open.empty()) close(open.begin()->first);
  };
  for (size_t position = 0; position < order.size(); ++position) {
    if (position == hooked_) close_all();  // deferred parameters get buckets of their own
    const size_t index = order[position];
    const int owner = owners_[index];
    Bucket& b = open[owner];
    b.owner = owner, b.members.push_back(index);
    open_bytes[owner] += params_[index].nbytes();
    if (open_bytes[owner] >= bucket_bytes_) close(owner);
  }
  close_all();
}

void GradientReducer::reorder_by_readiness() {
  reordered_ = true;
  std::vector<int64_t> order(ready_order_.begin(), ready_order_.end());
  for (size_t i = 0; i < hooked_; ++i)  // never ready (no gradient): last among the hooked
    if (!fired_[i]) order.push_back(static_cast<int64_t>(i));
  for (size_t i = hooked_; i < params_.size(); ++i) order.push_back(static_cast<int64_t>(i));
  // Collectives go in one order on every rank: rank 0's.
  std::vector<at::Tensor> shared{at::tensor(order, at::kLong).to(params_.front().device())};
  comm_.broadcast(shared, 0);
  const at::Tensor agreed = shared[0].cpu().contiguous();
  const int64_t* first = agreed.data_ptr<int64_t>();
  assign_buckets(std::vector<size_t>(first, first + agreed.numel()));
  ready_order_ = {};
}

std::vector<size_t> GradientReducer::launch_order() const {
  std::vector<size_t> out;
  for (const Bucket& b : buckets_)
    for (size_t m : b.members) out.push_back(given_index_[m]);
  return out;
}

GradientReducer::~GradientReducer() {
  for (size_t i = 0; i < hooked_; ++i) torch::autograd::impl::set_post_acc_grad_hooks(params_[i], nullptr);
}

void GradientReducer::ready(size_t param) {
  if (fired_[param])
    throw Error(
        "ZeRO-2: a parameter's gradient accumulated twice in one backward (used in two recomputed regions?); "
        "its bucket already left");
  fired_[param] = true;
  if (!reordered_) ready_order_.push_back(param);
  ++buckets_[bucket_of_[param]].ready;
  while (next_ < buckets_.size() && buckets_[next_].ready == buckets_[next_].members.size()) launch(next_++);
}

void GradientReducer::launch(size_t k) {
  torch::NoGradGuard no_grad;
  const Bucket& b = buckets_[k];
  // One buffer in the dtype the ranks sum in; each gradient is copied (converted) into its slice.
  int64_t numel = 0;
  for (size_t i : b.members) numel += params_[i].numel();
  const at::Tensor& first = params_[b.members.front()];
  at::Tensor flat = at::empty({numel}, first.options().dtype(sum_dtype_.value_or(first.scalar_type())));
  int64_t offset = 0;
  for (size_t i : b.members) {
    at::Tensor slice = flat.narrow(0, offset, params_[i].numel());
    const at::Tensor& g = params_[i].grad();
    if (g.defined()) {
      slice.copy_(g.reshape({-1}));
    } else {
      slice.zero_();
    }
    offset += params_[i].numel();
    params_[i].mutable_grad() = at::Tensor();  // the flat bucket holds it now
  }
  InFlight job{k, flat, nullptr};
  job.work = comm_.reduce_sum_async(job.flat, b.owner);
  in_flight_.push_back(std::move(job));
  while (in_flight_.size() > max_in_flight_) complete_oldest();
}

void GradientReducer::complete_oldest() {
  InFlight job = std::move(in_flight_.front());
  in_flight_.pop_front();
  job.work->wait();
  const Bucket& b = buckets_[job.bucket];
  if (b.owner != comm_.rank()) return;  // the bucket is freed
  int64_t offset = 0;
  for (size_t i : b.members) {
    const int64_t n = params_[i].numel();
    params_[i].mutable_grad() = job.flat.narrow(0, offset, n).view(params_[i].sizes());
    offset += n;
  }
}

void GradientReducer::finish() {
  while (next_ < buckets_.size()) launch(next_++);
  while (!in_flight_.empty()) complete_oldest();
  if (!reordered_ && !params_.empty()) reorder_by_readiness();
  for (auto& b : buckets_) b.ready = 0;
  std::fill(fired_.begin(), fired_.end(), false);
  next_ = 0;
}

}  // namespace c3
