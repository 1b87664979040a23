// Activation recomputation ("gradient checkpointing"): LibTorch has none built in. recompute()
// runs `fn` without keeping its intermediate activations and re-runs it with grad in backward, so
// memory holds one block's activations at a time instead of every block's.
#pragma once

#include <torch/torch.h>

#include <functional>

namespace c3 {

// Returns fn(x), differentiable in x and in every parameter `fn` uses. `fn` must be deterministic
// (Qwen2 has no dropout, so no RNG state needs replaying) and must stay callable until backward.
// When x does not require grad (or grad mode is off) this is a plain call.
at::Tensor recompute(std::function<at::Tensor(const at::Tensor&)> fn, const at::Tensor& x);

}  // namespace c3
