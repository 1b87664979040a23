#include "gradient_reducer.h"

#include <torch/csrc/autograd/function_hook.h>
#include <torch/csrc/autograd/variable.h>

#include <map>

namespace c3 {
namespace {

struct ReadyHook : torch::autograd::PostAccumulateGradHook {
  ReadyHook(std::function<void()> f) : on_ready(std::move(f)) {}
  void operator()(const torch::autograd::Variable&) override { on_ready(); }
  std::function<void()> on_ready;
};

}  // namespace

GradientReducer::GradientReducer(const std::vector<std::pair<at::Tensor, int>>& params, Communicator& comm,
                                 size_t bucket_bytes, size_t max_in_flight)
    : bucket_of_(params.size()), comm_(comm), max_in_flight_(max_in_flight) {
  // Backward order, roughly: the last registered first. Each owner fills a bucket of its own; a
  // bucket is closed (takes its place in the launch order) when full, the rest at the end.
  std::map<int, Bucket> open;
  std::map<int, size_t> open_bytes;
  for (size_t k = params.size(); k-- > 0;) {
    const auto& [param, owner] = params[k];
    params_.push_back(param);
    const size_t index = params_.size() - 1;
    Bucket& b = open[owner];
    b.owner = owner, b.members.push_back(index);
    open_bytes[owner] += param.nbytes();
    if (open_bytes[owner] >= bucket_bytes) {
      for (size_t m : b.members) bucket_of_[m] = buckets_.size();
      buckets_.push_back(std::move(b));
      open.erase(owner), open_bytes[owner] = 0;
    }
  }
  for (auto& [owner, b] : open) {
    for (size_t m : b.members) bucket_of_[m] = buckets_.size();
    buckets_.push_back(std::move(b));
  }
  for (size_t i = 0; i < params_.size(); ++i)
    torch::autograd::impl::set_post_acc_grad_hooks(params_[i], std::make_unique<ReadyHook>([this, i] { ready(i); }));
}

GradientReducer::~GradientReducer() {
  for (auto& p : params_) torch::autograd::impl::set_post_acc_grad_hooks(p, nullptr);
}

void GradientReducer::ready(size_t param) {
  ++buckets_[bucket_of_[param]].ready;
  while (next_ < buckets_.size() && buckets_[next_].ready == buckets_[next_].members.size()) launch(next_++);
}

void GradientReducer::launch(size_t k) {
  torch::NoGradGuard no_grad;
  const Bucket& b = buckets_[k];
  std::vector<at::Tensor> parts;
  for (size_t i : b.members) {
    const at::Tensor& g = params_[i].grad();
    parts.push_back(g.defined() ? g.reshape({-1}) : at::zeros({params_[i].numel()}, params_[i].options()));
  }
  InFlight job{k, at::cat(parts), nullptr};
  parts.clear();
  for (size_t i : b.members) params_[i].mutable_grad() = at::Tensor();  // the flat bucket holds it now
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
  for (auto& b : buckets_) b.ready = 0;
  next_ = 0;
}

}  // namespace c3
