// AdamW over named parameter groups, each with its own learning-rate multiplier, with fp32
// master weights and fp32 moments whatever the parameters' dtype (bf16 training keeps its
// precision in the optimizer, as DeepSpeed's mixed precision does). The update is
// torch::optim::AdamW's, step for step (tests use that as the oracle). State is plain named
// tensors, saved and restored with the training checkpoint.
#pragma once

#include <torch/torch.h>

#include <map>
#include <optional>
#include <string>
#include <vector>

namespace c3 {

struct AdamWOptions {
  double beta1 = 0.9;
  double beta2 = 0.999;
  double eps = 1e-8;
  double weight_decay = 0.0;
  // fp32 master weights and moments for non-fp32 parameters (DeepSpeed-style mixed precision).
  // false: state in the parameters' own dtype, as `model.to(bfloat16)` + torch.optim.AdamW.
  bool fp32_master = true;
  // With fp32 masters, accumulate_grads() sums micro-batch gradients in fp32 (DeepSpeed's default);
  // false: in the parameters' own dtype (autograd's sum), 4 bytes per parameter less.
  bool fp32_grad_accumulation = true;
  // ZeRO stage 1 (optimizer-state sharding): with shard_count > 1 this rank keeps master weights
  // and moments only for the parameters it owns (a balanced split by size, the same on every
  // rank), and step() updates only those; the trainer then broadcasts each owner's parameters.
  int shard_rank = 0, shard_count = 1;
  // ZeRO stage 2 on top: gradients too are kept only by their owner. During each micro-batch's
  // backward the trainer's GradientReducer sends them to their owners (parameter_owners()), then
  // accumulate_grads() keeps the owned sums and drops anything else.
  bool shard_gradients = false;
};

struct ParamGroup {
  std::string name;
  std::vector<std::pair<std::string, at::Tensor>> params;  // unique names across groups
  double lr_scale = 1.0;
  // HF Trainer's convention: biases and norm weights (1-D tensors) are never decayed.
  bool decay_vectors = false;
};

class AdamW {
 public:
  AdamW(const std::vector<ParamGroup>& groups, AdamWOptions options);

  // One update at base learning rate `lr` (each group uses lr * lr_scale) from the parameters'
  // current .grad (which may be any dtype); parameters without a gradient are skipped.
  void step(double lr);
  void zero_grad();  // drops the gradients (sets them undefined)

  // Moves the parameters' current .grad into fp32 accumulators (for parameters with an fp32
  // master), so that gradient accumulation over micro-batches sums in fp32, as DeepSpeed's bf16
  // optimizer does by default. Call after each micro-batch's backward; step() then uses the sums.
  void accumulate_grads();
  // The gradient tensors step() will use (for all-reducing across data-parallel ranks).
  std::vector<at::Tensor> gradients() const;
  int64_t steps() const { return steps_; }

  // Total L2 norm of all gradients (fp32), and in-place scaling of all gradients.
  double grad_norm() const;
  void scale_grads(double factor);

  // The parameters whose update rank `rank` computes (all of them when not sharded).
  std::vector<at::Tensor> parameters_owned_by(int rank) const;
  // Every parameter with the rank that owns it, in registration order.
  std::vector<std::pair<at::Tensor, int>> parameter_owners() const;
  // Sum of squares of the gradients this rank holds (ZeRO-2: its own; the trainer sums over ranks).
  double grad_norm_squared() const;
  int shard_count() const { return options_.shard_count; }
  // The dtype micro-batch gradients are summed in: float32 with fp32 masters and fp32 accumulation
  // (for non-fp32 parameters), else undefined: each parameter's own.
  std::optional<at::ScalarType> gradient_sum_dtype() const {
    if (options_.fp32_master && options_.fp32_grad_accumulation) return at::kFloat;
    return std::nullopt;
  }

  // exp_avg.NAME, exp_avg_sq.NAME and, for non-fp32 parameters, master.NAME, of the parameters
  // this rank owns: names do not depend on the sharding, so state saved by any number of ranks
  // loads into any other.
  std::vector<std::pair<std::string, at::Tensor>> state() const;
  // The names state() holds (what load_state needs).
  std::vector<std::string> state_names() const;
  // Restores state() output; a missing or mis-shaped tensor throws c3::Error naming it.
  void load_state(const std::map<std::string, at::Tensor>& tensors, int64_t steps, const std::string& source);

 private:
  struct Slot {
    at::Tensor param, master, exp_avg, exp_avg_sq;  // master aliases param when it is fp32
    at::Tensor grad32;                              // fp32 gradient sum (accumulate_grads)
    const at::Tensor& grad() const { return grad32.defined() ? grad32 : param.grad(); }
    std::string name;
    double lr_scale;
    bool decay;
    int owner = 0;
    bool owned = true;  // this rank holds its state and computes its update
  };
  std::vector<Slot> slots_;
  AdamWOptions options_;
  int64_t steps_ = 0;
};

}  // namespace c3
