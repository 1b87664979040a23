#include "recompute.h"

#include <ATen/core/ivalue.h>

namespace c3 {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

struct SavedFunction : torch::CustomClassHolder {
  std::function<at::Tensor(const at::Tensor&)> fn;
};

// Forward keeps only the input; backward re-runs fn with grad and back-propagates through it
// (re-entrantly, as PyTorch's reentrant checkpoint does), which also accumulates the gradients of
// the parameters fn uses into their .grad.
struct RecomputeFunction : public torch::autograd::Function<RecomputeFunction> {
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& x, c10::intrusive_ptr<SavedFunction> saved) {
    ctx->save_for_backward({x});
    at::Tensor out = saved->fn(x);  // Function::apply runs forward with grad mode off
    ctx->saved_data["fn"] = c10::IValue::make_capsule(std::move(saved));
    return out;
  }

  static variable_list backward(AutogradContext* ctx, variable_list grad_outputs) {
    const at::Tensor x = ctx->get_saved_variables()[0];
    auto saved = c10::static_intrusive_pointer_cast<SavedFunction>(ctx->saved_data["fn"].toCapsule());
    at::Tensor input = x.detach().requires_grad_(true);
    at::Tensor out;
    {
      torch::AutoGradMode enable_grad(true);
      out = saved->fn(input);
    }
    torch::autograd::backward({out}, {grad_outputs[0]});
    return {input.grad(), at::Tensor()};
  }
};

}  // namespace

at::Tensor recompute(std::function<at::Tensor(const at::Tensor&)> fn, const at::Tensor& x) {
  if (!torch::GradMode::is_enabled() || !x.requires_grad()) return fn(x);
  auto saved = c10::make_intrusive<SavedFunction>();
  saved->fn = std::move(fn);
  return RecomputeFunction::apply(x, saved);
}

}  // namespace c3
