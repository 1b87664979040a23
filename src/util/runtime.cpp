#include "c3/util/runtime.h"

#include <c10/core/impl/DeviceGuardImplInterface.h>
#include <malloc.h>

#include <spdlog/sinks/basic_file_sink.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>
#include <torch/torch.h>
#include <cstdlib>

#include <thread>

#include "c3/util/error.h"
#include "util/launcher.h"

namespace c3 {

void configure_logging(const std::string& level, const std::string& log_file) {
  std::vector<spdlog::sink_ptr> sinks;
  sinks.push_back(std::make_shared<spdlog::sinks::stderr_color_sink_mt>());
  if (!log_file.empty()) {
    try {
      sinks.push_back(std::make_shared<spdlog::sinks::basic_file_sink_mt>(log_file, /*truncate=*/false));
    } catch (const spdlog::spdlog_ex& e) {
      throw UsageError(log_file + ": cannot open log file (" + e.what() + ")");
    }
  }
  auto logger = std::make_shared<spdlog::logger>("c3", sinks.begin(), sinks.end());
  logger->set_pattern("[%Y-%m-%d %H:%M:%S.%e] [%^%l%$] %v");
  const auto lvl = spdlog::level::from_str(level);
  if (lvl == spdlog::level::off && level != "off")
    throw UsageError("--log-level " + level + ": choose trace, debug, info, warn, error or off");
  logger->set_level(lvl);
  logger->flush_on(spdlog::level::warn);
  spdlog::set_default_logger(logger);
}

int configure_threads(int requested) {
  if (requested < 0) throw UsageError("--threads must be 0 (all cores) or positive");
  int n = requested > 0 ? requested : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  at::set_num_threads(n);
  return n;
}

void configure_cpu_allocator() {
  for (const char* name : {"GLIBC_TUNABLES", "MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_"})
    if (std::getenv(name) != nullptr) return;  // the user's choice
  ::mallopt(M_MMAP_THRESHOLD, 32 << 20);
  ::mallopt(M_TRIM_THRESHOLD, 1 << 30);
}

c10::Device cuda_device_for_local_rank(int local_rank, int device_count) {
  if (local_rank >= device_count)
    throw UsageError("local rank " + std::to_string(local_rank) + " has no GPU of its own: this node has " +
                     std::to_string(device_count) + " (start at most one process per GPU)");
  return c10::Device(c10::kCUDA, static_cast<c10::DeviceIndex>(local_rank));
}

c10::Device resolve_device(const std::string& name) {
  if (name == "cpu") return c10::Device(c10::kCPU);
  if (name == "cuda" || name == "auto") {
    if (cuda_available()) {
      const c10::Device device =
          cuda_device_for_local_rank(launch_rank_from_env().local_rank, static_cast<int>(torch::cuda::device_count()));
      c10::impl::getDeviceGuardImpl(c10::DeviceType::CUDA)->setDevice(device);  // before cuBLAS or NCCL start
      return device;
    }
    if (name == "cuda") throw UsageError("--device cuda: this LibTorch build has no usable CUDA device");
    return c10::Device(c10::kCPU);
  }
  throw UsageError("--device " + name + ": choose cpu, cuda or auto");
}

bool cuda_available() { return torch::cuda::is_available(); }

std::string blas_backend() {
  const std::string config = at::show_config();
  const auto at = config.find("BLAS_INFO=");
  if (at == std::string::npos) return "unknown";
  const auto end = config.find_first_of(", \n", at);
  const std::string name = config.substr(at + 10, end - at - 10);
  return name == "mkl" ? "MKL" : name;
}

}  // namespace c3
