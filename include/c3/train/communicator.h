// What the trainer needs from data parallelism, and nothing more: its rank, the world size, and
// sums across ranks. Single-process training uses LocalCommunicator; the c10d implementation
// (NCCL/Gloo, a later issue) plugs in behind the same interface without touching the trainer.
#pragma once

#include <torch/torch.h>

#include <vector>

namespace c3 {

class Communicator {
 public:
  virtual ~Communicator() = default;
  virtual int rank() const = 0;
  virtual int world_size() const = 0;
  bool is_main() const { return rank() == 0; }
  // In-place sum over ranks (gradients: each rank has already divided by the global token count).
  virtual void all_reduce_sum(std::vector<at::Tensor>& tensors) = 0;
  virtual double all_reduce_sum(double value) = 0;
  // Rank 0's values to every rank (initial parameters).
  virtual void broadcast(std::vector<at::Tensor>& tensors) = 0;
  virtual void barrier() = 0;
};

class LocalCommunicator : public Communicator {
 public:
  int rank() const override { return 0; }
  int world_size() const override { return 1; }
  void all_reduce_sum(std::vector<at::Tensor>&) override {}
  double all_reduce_sum(double value) override { return value; }
  void broadcast(std::vector<at::Tensor>&) override {}
  void barrier() override {}
};

}  // namespace c3
