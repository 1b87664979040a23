#include "c3/train/distributed.h"

#include <spdlog/spdlog.h>
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#ifdef C3_WITH_NCCL  // LibTorch built with NCCL (CMake finds ProcessGroupNCCL and nccl.h)
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#endif

#include <cstdlib>
#include <cstring>

#include "c3/util/error.h"
#include "util/launcher.h"

namespace c3 {
namespace {

std::string first_line(const std::string& text) { return text.substr(0, text.find('\n')); }

// Every collective goes through here: c10d reports a dead peer or a timeout as c10::Error (or a
// std::runtime_error from Gloo), which becomes one line that says what was being done.
template <typename F>
auto guarded(const std::string& what, F&& f) -> decltype(f()) {
  try {
    return f();
  } catch (const Error&) {
    throw;
  } catch (const std::exception& e) {
    throw Error("distributed " + what + " failed (a rank died, or timed out): " + first_line(e.what()));
  }
}

template <typename Group>
class C10dCommunicator : public Communicator {
 public:
  C10dCommunicator(c10::intrusive_ptr<Group> group, const DistributedEnv& env, c10::Device device, std::string backend)
      : group_(std::move(group)), env_(env), device_(device), backend_(std::move(backend)) {}

  int rank() const override { return env_.rank; }
  int world_size() const override { return env_.world_size; }

  void all_reduce_sum(std::vector<at::Tensor>& tensors) override {
    guarded("all-reduce",
            [&] { in_buckets(tensors, [&](std::vector<at::Tensor>& flat) { return group_->allreduce(flat); }); });
  }

  std::unique_ptr<Pending> reduce_sum_async(at::Tensor& flat, int root) override {
    struct Work : Pending {
      c10::intrusive_ptr<c10d::Work> work;
      void wait() override {
        guarded("reduce", [&] { work->wait(); });
      }
    };
    c10d::ReduceOptions options;
    options.rootRank = root;
    std::vector<at::Tensor> one{flat};
    auto pending = std::make_unique<Work>();
    pending->work = guarded("reduce", [&] { return group_->reduce(one, options); });
    return pending;
  }

  double all_reduce_sum(double value) override {
    std::vector<at::Tensor> one{at::full({1}, value, at::TensorOptions().dtype(at::kDouble).device(device_))};
    guarded("all-reduce", [&] { group_->allreduce(one)->wait(); });
    return one[0].item<double>();
  }

  void broadcast(std::vector<at::Tensor>& tensors, int root) override {
    guarded("broadcast", [&] {
      c10d::BroadcastOptions options;
      options.rootRank = root;
      in_buckets(tensors, [&](std::vector<at::Tensor>& flat) { return group_->broadcast(flat, options); });
    });
  }

  std::string broadcast_string(const std::string& value, int root) override {
    const auto on = at::TensorOptions().device(device_);
    std::vector<at::Tensor> length{at::full({1}, static_cast<int64_t>(value.size()), on.dtype(at::kLong))};
    broadcast(length, root);
    const int64_t n = length[0].item<int64_t>();
    at::Tensor bytes = at::zeros({std::max<int64_t>(n, 1)}, at::kByte);
    if (rank() == root) std::memcpy(bytes.data_ptr<uint8_t>(), value.data(), value.size());
    std::vector<at::Tensor> payload{bytes.to(device_)};
    broadcast(payload, root);
    const at::Tensor got = payload[0].to(at::kCPU);
    return std::string(reinterpret_cast<const char*>(got.data_ptr<uint8_t>()), static_cast<size_t>(n));
  }

  void barrier() override {
    guarded("barrier", [&] { group_->barrier()->wait(); });
  }

  std::string describe() const override {
    return backend_ + ", rank " + std::to_string(env_.rank) + " of " + std::to_string(env_.world_size) +
           " (local rank " + std::to_string(env_.local_rank) + "), rendezvous " + env_.master_addr + ":" +
           std::to_string(env_.master_port) + " from " + env_.source;
  }

 private:
  // Runs `collective` on flat buckets (<= kBucketBytes, one dtype and device) of `tensors`, all
  // launched before any is waited for, and copies the results back.
  template <typename Collective>
  void in_buckets(std::vector<at::Tensor>& tensors, Collective&& collective) {
    torch::NoGradGuard no_grad;
    std::vector<std::vector<size_t>> buckets;
    size_t bytes = 0;
    for (size_t i = 0; i < tensors.size(); ++i) {
      const at::Tensor& t = tensors[i];
      const at::Tensor* first = buckets.empty() ? nullptr : &tensors[buckets.back().front()];
      if (!first || bytes + t.nbytes() > kBucketBytes || first->scalar_type() != t.scalar_type() ||
          first->device() != t.device())
        buckets.emplace_back(), bytes = 0;
      buckets.back().push_back(i);
      bytes += t.nbytes();
    }
    std::vector<at::Tensor> flats(buckets.size());
    std::vector<decltype(collective(std::declval<std::vector<at::Tensor>&>()))> works(buckets.size());
    auto finish = [&](size_t k) {
      works[k]->wait();
      int64_t offset = 0;
      for (size_t i : buckets[k]) {
        const int64_t n = tensors[i].numel();
        tensors[i].copy_(flats[k].narrow(0, offset, n).view_as(tensors[i]));
        offset += n;
      }
      flats[k] = at::Tensor();
    };
    // At most kBucketsInFlight copies exist at once: the next is launched while one is summed.
    size_t finished = 0;
    for (size_t k = 0; k < buckets.size(); ++k) {
      if (k - finished == kBucketsInFlight) finish(finished++);
      std::vector<at::Tensor> parts;
      for (size_t i : buckets[k]) parts.push_back(tensors[i].reshape({-1}));
      std::vector<at::Tensor> one{at::cat(parts)};
      flats[k] = one[0];
      works[k] = collective(one);
    }
    while (finished < buckets.size()) finish(finished++);
  }

  c10::intrusive_ptr<Group> group_;
  DistributedEnv env_;
  c10::Device device_;
  std::string backend_;
};

std::string rendezvous_failure(const DistributedEnv& env, const std::string& where, std::chrono::milliseconds timeout) {
  return "rendezvous at " + where + " failed within " + std::to_string(timeout.count() / 1000) + " s (rank " +
         std::to_string(env.rank) + " of " + std::to_string(env.world_size) +
         "; are all ranks started, and is MASTER_ADDR:MASTER_PORT rank 0's and free?): ";
}

}  // namespace

std::string first_slurm_host(const std::string& nodelist) {
  // The first entry ends at a comma outside brackets; a bracket holds ranges "003-005" or lists.
  std::string host;
  for (size_t i = 0; i < nodelist.size(); ++i) {
    const char c = nodelist[i];
    if (c == ',') break;
    if (c != '[') {
      host += c;
      continue;
    }
    const size_t close = nodelist.find(']', i);
    const std::string inside = nodelist.substr(i + 1, close == std::string::npos ? std::string::npos : close - i - 1);
    host += inside.substr(0, inside.find_first_of(",-"));
    i = close == std::string::npos ? nodelist.size() : close;
  }
  return host;
}

DistributedEnv detect_distributed_env() {
  const LaunchRank launch = launch_rank_from_env();
  DistributedEnv e;
  e.rank = launch.rank, e.world_size = launch.world_size, e.local_rank = launch.local_rank, e.source = launch.source;
  if (e.source == "torchrun") {
    e.master_addr = env_value("MASTER_ADDR") ? env_value("MASTER_ADDR") : "127.0.0.1";
  } else if (e.source == "slurm") {
    if (env_value("MASTER_ADDR")) {
      e.master_addr = env_value("MASTER_ADDR");
    } else if (const char* nodes =
                   env_value("SLURM_JOB_NODELIST") ? env_value("SLURM_JOB_NODELIST") : env_value("SLURM_NODELIST")) {
      e.master_addr = first_slurm_host(nodes);
    } else {
      throw UsageError(
          "SLURM_NTASKS > 1 but neither MASTER_ADDR nor SLURM_JOB_NODELIST is set: cannot find rank 0's host");
    }
  }
  e.master_port = env_int("MASTER_PORT", 29500);
  if (e.master_port <= 0 || e.master_port > 65535) throw UsageError("MASTER_PORT must be a TCP port (1-65535)");
  return e;
}

std::string choose_backend(const std::string& wanted, const c10::Device& device) {
  if (wanted == "auto") return device.is_cuda() ? "nccl" : "gloo";
  if (wanted == "gloo") return wanted;
  if (wanted == "nccl") {
    if (!device.is_cuda()) throw UsageError("train.dist_backend nccl needs a CUDA device (this run is on the CPU)");
    return wanted;
  }
  throw UsageError("train.dist_backend " + wanted + ": choose auto, nccl or gloo");
}

void set_nccl_environment() { ::setenv("TORCH_NCCL_BLOCKING_WAIT", "1", /*overwrite=*/0); }

std::unique_ptr<Communicator> make_communicator(const DistributedEnv& env, const c10::Device& device,
                                                const std::string& backend, std::chrono::milliseconds timeout) {
  if (!env.active()) return std::make_unique<LocalCommunicator>();
  const std::string where = env.master_addr + ":" + std::to_string(env.master_port);
  c10::intrusive_ptr<c10d::Store> store;
  try {
    c10d::TCPStoreOptions options;
    options.port = static_cast<uint16_t>(env.master_port);
    options.isServer = env.rank == 0;
    options.numWorkers = static_cast<size_t>(env.world_size);
    options.waitWorkers = true;
    options.timeout = timeout;
    store = c10::make_intrusive<c10d::TCPStore>(env.master_addr, options);
  } catch (const std::exception& e) {
    throw Error(rendezvous_failure(env, where, timeout) + first_line(e.what()));
  }
  if (backend == "nccl") {
#ifdef C3_WITH_NCCL
    set_nccl_environment();  // read by ProcessGroupNCCL's constructor
    auto options = c10d::ProcessGroupNCCL::Options::create();
    options->timeout = timeout;
    auto group = guarded("NCCL setup", [&] {
      return c10::make_intrusive<c10d::ProcessGroupNCCL>(store, env.rank, env.world_size, options);
    });
    return std::make_unique<C10dCommunicator<c10d::ProcessGroupNCCL>>(group, env, device, "nccl");
#else
    throw Error("multi-GPU training needs a LibTorch built with NCCL; this one has none");
#endif
  }
  auto options = c10d::ProcessGroupGloo::Options::create(timeout);
  // GLOO_SOCKET_IFNAME picks the network interface, as in PyTorch; else this host's name.
  options->devices.push_back(env_value("GLOO_SOCKET_IFNAME")
                                 ? c10d::ProcessGroupGloo::createDeviceForInterface(env_value("GLOO_SOCKET_IFNAME"))
                                 : c10d::ProcessGroupGloo::createDefaultDevice());
  c10::intrusive_ptr<c10d::ProcessGroupGloo> group;
  try {
    group = c10::make_intrusive<c10d::ProcessGroupGloo>(store, env.rank, env.world_size, options);
  } catch (const std::exception& e) {
    throw Error(rendezvous_failure(env, where, timeout) + first_line(e.what()));
  }
  return std::make_unique<C10dCommunicator<c10d::ProcessGroupGloo>>(group, env, device, "gloo");
}

}  // namespace c3
