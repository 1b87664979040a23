// Time and peak memory to load a Qwen2 checkpoint folder into each dtype on the CPU.
//   bench_checkpoint_load [--preset 0.5b]
// Writes a random checkpoint of the preset (bf16 on disk, as released models are) to a temporary
// folder, then loads it twice per target dtype, each load in a fresh process (started with
// posix_spawn: fork after OpenMP has started is unsafe) so peak resident memory is per load.
// Peak RSS includes the process's own LibTorch footprint. Then the time to checksum the same files
// as a training checkpoint's manifest does (at every save, and at every resume).
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>

#include "c3/model/checkpoint_info.h"
#include "c3/model/qwen2_io.h"
#include "c3/util/dtype.h"
#include "c3/util/runtime.h"
#include "c3/util/sha256.h"

namespace fs = std::filesystem;
extern char** environ;

namespace {

// Peak resident memory of this process image (VmHWM; ru_maxrss would carry the parent's peak
// across execve).
double peak_rss_bytes() {
  std::ifstream status("/proc/self/status");
  std::string key;
  double kib = -1;
  while (status >> key) {
    if (key == "VmHWM:") {
      status >> kib;
      break;
    }
  }
  return kib * 1024.0;
}

// Child mode: load DIR into DTYPE, write the seconds and peak RSS to OUT.
int load_once(const std::string& dir, const std::string& dtype, const std::string& out) {
  c3::configure_threads(0);
  const auto t0 = std::chrono::steady_clock::now();
  c3::LoadOptions opts;
  opts.dtype = c3::scalar_type_from_name(dtype);
  auto model = c3::load_qwen2(dir, opts);
  std::ofstream(out) << std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() << " "
                     << peak_rss_bytes() << "\n";
  return 0;
}

// chunked_file_digest over every file of `dir`, on 1 thread and on all cores.
void print_digest_speed(const fs::path& dir) {
  double bytes = 0;
  for (const auto& e : fs::directory_iterator(dir)) bytes += static_cast<double>(e.file_size());
  std::printf("\nChecksumming it as a checkpoint manifest does (chunked SHA-256, %s, page cache warm)\n",
              c3::human_bytes(bytes).c_str());
  std::printf("%-10s %10s %12s\n", "threads", "seconds", "GB/s");
  const int cores = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  for (const int threads : {1, cores}) {
    const auto t0 = std::chrono::steady_clock::now();
    for (const auto& e : fs::directory_iterator(dir)) (void)c3::chunked_file_digest(e.path(), threads);
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    std::printf("%-10d %10.2f %12.2f\n", threads, seconds, bytes / seconds / 1e9);
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (argc == 5 && std::string(argv[1]) == "--load-child") return load_once(argv[2], argv[3], argv[4]);
  std::string preset = "0.5b";
  for (int i = 1; i + 1 < argc; i += 2) {
    if (std::string(argv[i]) == "--preset") preset = argv[i + 1];
  }
  const fs::path dir = fs::temp_directory_path() / ("c3-bench-load-" + std::to_string(::getpid()));
  const auto config = c3::Qwen2Config::preset(preset);
  {
    c3::configure_threads(0);
    c3::Qwen2ForCausalLM model(config);
    model->init_weights(0);
    c3::SaveOptions save;
    save.dtype = at::kBFloat16;
    c3::save_qwen2(model, dir / "ckpt", save);
  }
  const auto params = config.parameter_count();
  std::printf("Loading a %s Qwen2 checkpoint (%s parameters, bf16 on disk, page cache warm)\n", preset.c_str(),
              c3::human_count(params).c_str());
  std::printf("%-10s %10s %14s %16s\n", "into", "seconds", "peak RSS", "RSS / weights");
  for (const std::string dtype : {"bfloat16", "float32"}) {
    for (int rep = 0; rep < 2; ++rep) {
      const std::string out = (dir / "seconds.txt").string(), ckpt = (dir / "ckpt").string();
      const char* child_argv[] = {argv[0], "--load-child", ckpt.c_str(), dtype.c_str(), out.c_str(), nullptr};
      pid_t pid = 0;
      if (::posix_spawn(&pid, "/proc/self/exe", nullptr, nullptr, const_cast<char**>(child_argv), environ) != 0)
        return 1;
      int status = 0;
      ::waitpid(pid, &status, 0);
      double seconds = -1, rss = -1;
      std::ifstream(out) >> seconds >> rss;
      const double weights = static_cast<double>(params) * (dtype == "float32" ? 4 : 2);
      std::printf("%-10s %10.2f %14s %15.2fx\n", dtype.c_str(), seconds, c3::human_bytes(rss).c_str(), rss / weights);
      std::fflush(stdout);
    }
  }
  print_digest_speed(dir / "ckpt");
  fs::remove_all(dir);
  return 0;
}
