// What the trainer needs from data parallelism, and nothing more: its rank, the world size,
// sums across ranks, broadcasts and a barrier. Single-process training uses LocalCommunicator;
// multi-process training uses c10d (Gloo on CPUs, NCCL on GPUs) behind the same interface
// (make_communicator in c3/train/distributed.h), so the trainer never sees a process group.
#pragma once

#include <torch/torch.h>

#include <memory>
#include <string>
#include <vector>

namespace c3 {

// Collectives move tensors in flat buckets of at most this many bytes (PyTorch DDP's default), at
// most kBucketsInFlight of them launched and not yet finished (their copies are the memory cost).
constexpr size_t kBucketBytes = 25u << 20;
constexpr size_t kBucketsInFlight = 2;

class Communicator {
 public:
  // A collective launched without waiting; wait() finishes it (and throws c3::Error if it failed).
  class Pending {
   public:
    virtual ~Pending() = default;
    virtual void wait() = 0;
  };
  virtual ~Communicator() = default;
  virtual int rank() const = 0;
  virtual int world_size() const = 0;
  bool is_main() const { return rank() == 0; }
  // In-place sum over ranks (gradients: each rank has already divided by the global token count).
  virtual void all_reduce_sum(std::vector<at::Tensor>& tensors) = 0;
  virtual double all_reduce_sum(double value) = 0;
  // Sum over ranks into `root`'s `flat`, launched and not waited for (ZeRO-2: a bucket of gradients
  // to the rank that owns them, during backward); the other ranks' `flat` is left unspecified.
  virtual std::unique_ptr<Pending> reduce_sum_async(at::Tensor& flat, int root) = 0;
  // `root`'s values to every rank, in place (initial parameters; ZeRO-1's updated shards).
  virtual void broadcast(std::vector<at::Tensor>& tensors, int root = 0) = 0;
  // `root`'s string to every rank (e.g. where rank 0 stages a checkpoint).
  virtual std::string broadcast_string(const std::string& value, int root = 0) = 0;
  virtual void barrier() = 0;
  // A one-line description for the log ("gloo, rank 1 of 4, master host:port").
  virtual std::string describe() const = 0;
};

class LocalCommunicator : public Communicator {
 public:
  int rank() const override { return 0; }
  int world_size() const override { return 1; }
  void all_reduce_sum(std::vector<at::Tensor>&) override {}
  double all_reduce_sum(double value) override { return value; }
  std::unique_ptr<Pending> reduce_sum_async(at::Tensor&, int) override {
    struct Done : Pending {
      void wait() override {}
    };
    return std::make_unique<Done>();
  }
  void broadcast(std::vector<at::Tensor>&, int) override {}
  std::string broadcast_string(const std::string& value, int) override { return value; }
  void barrier() override {}
  std::string describe() const override { return "single process"; }
};

}  // namespace c3
