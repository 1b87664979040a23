#include "c3/train/optimizer.h"

#include <algorithm>
#include <cmath>
#include <map>

#include "c3/util/error.h"

namespace c3 {

AdamW::AdamW(const std::vector<ParamGroup>& groups, AdamWOptions options) : options_(options) {
  torch::NoGradGuard no_grad;
  if (options_.shard_count < 1 || options_.shard_rank < 0 || options_.shard_rank >= options_.shard_count)
    throw Error("invalid optimizer sharding: rank " + std::to_string(options_.shard_rank) + " of " +
                std::to_string(options_.shard_count));
  for (const auto& group : groups) {
    for (const auto& [name, param] : group.params) {
      Slot slot;
      slot.name = name;
      slot.param = param;
      slot.lr_scale = group.lr_scale;
      slot.decay = options_.weight_decay != 0.0 && (param.dim() >= 2 || group.decay_vectors);
      slots_.push_back(std::move(slot));
    }
  }
  // Owners: largest parameters first, each to the least-loaded rank (ties: the lower rank).
  std::vector<size_t> order(slots_.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::stable_sort(order.begin(), order.end(),
                   [&](size_t a, size_t b) { return slots_[a].param.numel() > slots_[b].param.numel(); });
  std::vector<int64_t> load(options_.shard_count, 0);
  for (size_t i : order) {
    const int owner = static_cast<int>(std::min_element(load.begin(), load.end()) - load.begin());
    slots_[i].owner = owner;
    slots_[i].owned = owner == options_.shard_rank;
    load[owner] += slots_[i].param.numel();
  }
  for (Slot& slot : slots_) {
    if (!slot.owned) continue;  // no master, no moments: the memory ZeRO-1 saves
    const bool own_master = options_.fp32_master && slot.param.scalar_type() != at::kFloat;
    slot.master = own_master ? slot.param.detach().to(at::kFloat) : slot.param;
    slot.exp_avg = at::zeros_like(slot.master);
    slot.exp_avg_sq = at::zeros_like(slot.master);
  }
}

std::vector<std::pair<at::Tensor, int>> AdamW::parameter_owners() const {
  std::vector<std::pair<at::Tensor, int>> out;
  for (const Slot& s : slots_) out.emplace_back(s.param, s.owner);
  return out;
}

std::vector<at::Tensor> AdamW::parameters_owned_by(int rank) const {
  std::vector<at::Tensor> out;
  for (const Slot& s : slots_)
    if (s.owner == rank) out.push_back(s.param);
  return out;
}

void AdamW::step(double lr) {
  torch::NoGradGuard no_grad;
  ++steps_;
  // Slots with the same update (learning rate, decay) go through one call of ATen's fused AdamW
  // (what torch.optim.AdamW(fused=True) runs): one pass over each tensor instead of eight.
  struct Batch {
    std::vector<at::Tensor> params, grads, exp_avgs, exp_avg_sqs;
  };
  std::map<std::pair<double, bool>, Batch> batches;
  for (Slot& s : slots_) {
    const at::Tensor& grad = s.grad();
    if (!s.owned || !grad.defined()) continue;
    Batch& b = batches[{s.lr_scale, s.decay}];
    b.params.push_back(s.master);
    b.grads.push_back(grad.scalar_type() == s.master.scalar_type() ? grad : grad.to(s.master.scalar_type()));
    b.exp_avgs.push_back(s.exp_avg);
    b.exp_avg_sqs.push_back(s.exp_avg_sq);
  }
  for (auto& [key, b] : batches) {
    // The step count, as torch.optim keeps it for fused AdamW: a float32 scalar on the parameters' device.
    const at::Tensor step =
        at::scalar_tensor(static_cast<double>(steps_), b.params.front().options().dtype(at::kFloat));
    at::_fused_adamw_(b.params, b.grads, b.exp_avgs, b.exp_avg_sqs, /*max_exp_avg_sqs=*/{},
                      std::vector<at::Tensor>(b.params.size(), step), lr * key.first, options_.beta1, options_.beta2,
                      key.second ? options_.weight_decay : 0.0, options_.eps, /*amsgrad=*/false, /*maximize=*/false);
  }
  for (Slot& s : slots_)
    if (s.owned && s.grad().defined() && !s.master.is_same(s.param)) s.param.copy_(s.master);
}

void AdamW::zero_grad() {
  for (Slot& s : slots_) s.param.mutable_grad() = at::Tensor(), s.grad32 = at::Tensor();
}

void AdamW::accumulate_grads() {
  torch::NoGradGuard no_grad;
  for (Slot& s : slots_) {
    if (options_.shard_gradients && !s.owned) {
      s.param.mutable_grad() = at::Tensor();  // reduced to its owner already
      continue;
    }
    const bool own_dtype = s.param.scalar_type() == at::kFloat || !gradient_sum_dtype();
    if (own_dtype || !s.param.grad().defined()) continue;  // autograd keeps summing into .grad
    if (s.grad32.defined()) {
      s.grad32.add_(s.param.grad());
    } else {
      s.grad32 = s.param.grad().to(at::kFloat);  // ZeRO-2's arrive in fp32: taken as they are
    }
    s.param.mutable_grad() = at::Tensor();
  }
}

std::vector<at::Tensor> AdamW::gradients() const {
  std::vector<at::Tensor> out;
  for (const Slot& s : slots_)
    if (s.grad().defined()) out.push_back(s.grad());
  return out;
}

double AdamW::grad_norm() const { return std::sqrt(grad_norm_squared()); }

double AdamW::grad_norm_squared() const {
  std::vector<at::Tensor> squares;
  for (const Slot& s : slots_)
    if (s.grad().defined()) squares.push_back(s.grad().to(at::kFloat).square().sum());
  if (squares.empty()) return 0.0;
  return at::stack(squares).sum().item<double>();
}

void AdamW::scale_grads(double factor) {
  torch::NoGradGuard no_grad;
  for (Slot& s : slots_) {
    if (s.grad32.defined()) {
      s.grad32.mul_(factor);
    } else if (s.param.grad().defined()) {
      s.param.mutable_grad().mul_(factor);
    }
  }
}

std::vector<std::pair<std::string, at::Tensor>> AdamW::state() const {
  std::vector<std::pair<std::string, at::Tensor>> out;
  for (const Slot& s : slots_) {
    if (!s.owned) continue;
    out.emplace_back("exp_avg." + s.name, s.exp_avg);
    out.emplace_back("exp_avg_sq." + s.name, s.exp_avg_sq);
    if (!s.master.is_same(s.param)) out.emplace_back("master." + s.name, s.master);
  }
  return out;
}

std::vector<std::string> AdamW::state_names() const {
  std::vector<std::string> names;
  for (const auto& [name, tensor] : state()) names.push_back(name);
  return names;
}

void AdamW::load_state(const std::map<std::string, at::Tensor>& tensors, int64_t steps, const std::string& source) {
  torch::NoGradGuard no_grad;
  auto restore = [&](at::Tensor& destination, const std::string& key) {
    auto it = tensors.find(key);
    if (it == tensors.end()) fail_file(source, "missing optimizer tensor '" + key + "'");
    if (it->second.sizes() != destination.sizes())
      fail_file(source, "optimizer tensor '" + key + "' does not match the model's shape");
    destination.copy_(it->second);
  };
  for (Slot& s : slots_) {
    if (!s.owned) continue;
    restore(s.exp_avg, "exp_avg." + s.name);
    restore(s.exp_avg_sq, "exp_avg_sq." + s.name);
    if (!s.master.is_same(s.param)) {
      restore(s.master, "master." + s.name);
      s.param.copy_(s.master);
    }
  }
  steps_ = steps;
}

}  // namespace c3
