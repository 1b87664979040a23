// Qwen2 forward throughput on this machine: prefill (full forward) and cached decoding, for small
// configurations, side by side across dtypes and thread counts, then both OpenMP wait policies
// (each in a child process, since libgomp reads the policy only at start; c3 leaves the default,
// spinning). Prints tables (and --json rows).
//   bench_qwen2_forward [--quick] [--json FILE]
// With --model DIR, a real Qwen2-family model folder (c3 import writes one from a GGUF) instead, at
// the shapes a CPU user meets: prefill of 64-1024-token texts at batch 1 (what compress does on the
// encoder), decode after a 64-token prompt at batch 1, 8 and 32, and the time to the first token
// (prefill of 64 tokens and the logits of the last); bench/vs_llamacpp.py puts it beside llama.cpp.
//   bench_qwen2_forward --model DIR [--dtype float32|bfloat16] [--threads N] [--quick] [--json FILE]
// --profile adds where a batch-1 decoding step's time goes, operator by operator, and its op count;
// --fused measures the model with fused projections (Qwen2Model::fuse_projections, which c3 uses on
// a GPU only); at the end, fused and unfused side by side, interleaved in one process; --int8
// decodes with weight-only int8 copies (--quantize int8).
#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "c3/io/checkpoint_dir.h"
#include "c3/model/qwen2.h"
#include "c3/model/qwen2_config.h"
#include "c3/model/qwen2_io.h"
#include "c3/torch_compat.h"
#include "c3/util/dtype.h"
#include "c3/util/runtime.h"
#include "op_profile.h"

namespace {

using Clock = std::chrono::steady_clock;

struct Case {
  std::string model;
  c3::Qwen2Config config;
  std::string mode;  // "prefill", "decode" or "first" (seconds to the first token)
  int64_t batch, prompt, steps;
  at::ScalarType dtype;
  int threads;
  std::string dir = "";  // a model folder to load (its config is `config`); "": random weights
  bool fused = false;    // q/k/v and gate/up as one GEMM each (Qwen2Model::fuse_projections)
  bool int8 = false;     // weight-only int8 copies for decoding (Qwen2ForCausalLM::quantize_int8)
};

std::string shape_label(const Case& c) {
  return std::to_string(c.prompt) + (c.steps ? "+" + std::to_string(c.steps) : "");
}

nlohmann::json row(const Case& c, double tokens_per_second, const std::string& wait_policy) {
  return {{"model", c.model},
          {"mode", c.mode},
          {"dtype", c3::scalar_type_name(c.dtype)},
          {"batch", c.batch},
          {"prompt", c.prompt},
          {"steps", c.steps},
          {"threads", c.threads},
          {"omp_wait_policy", wait_policy},
          {"tokens_per_second", tokens_per_second},
          {"fused_projections", c.fused},
          {"int8", c.int8},
          {"parameters", c.config.parameter_count()}};
}

// Median seconds of `fn` over repeats (after one warm-up), at least `min_repeats`, up to ~budget.
template <typename F>
double median_seconds(F&& fn, int min_repeats, double budget_s) {
  fn();
  std::vector<double> times;
  const auto start = Clock::now();
  while (static_cast<int>(times.size()) < min_repeats ||
         (std::chrono::duration<double>(Clock::now() - start).count() < budget_s && times.size() < 50)) {
    const auto t0 = Clock::now();
    fn();
    times.push_back(std::chrono::duration<double>(Clock::now() - t0).count());
  }
  std::sort(times.begin(), times.end());
  return times[times.size() / 2];
}

c3::Qwen2ForCausalLM load_model(const Case& c) {
  if (!c.dir.empty()) {
    c3::LoadOptions options;
    options.dtype = c.dtype;
    c3::Qwen2ForCausalLM model = c3::load_qwen2(c.dir, options);
    if (c.int8) model->quantize_int8();      // as C3Codec::load does for --quantize int8
    if (c.fused) model->fuse_projections();  // as C3Codec::load does on a GPU
    return model;
  }
  c3::Qwen2ForCausalLM model(c.config);
  model->init_weights(0);
  model->to(c.dtype);
  return model;
}

double run_case(const Case& c, double budget_s) {
  c3::configure_threads(c.threads);
  torch::NoGradGuard no_grad;
  c3::Qwen2ForCausalLM model = load_model(c);
  const auto ids = torch::randint(0, c.config.vocab_size, {c.batch, c.prompt}, torch::kLong);
  if (c.mode == "prefill") {
    const double s = median_seconds([&] { model->forward(ids); }, 3, budget_s);
    return static_cast<double>(c.batch * c.prompt) / s;
  }
  if (c.mode == "first") {  // seconds to the first token: the prompt into a cache, the last logits
    return median_seconds(
        [&] {
          c3::KVCache cache;
          const auto last = torch::full({c.batch, 1}, c.prompt - 1, torch::kLong);
          model->logits(model->prefill(model->embed(ids), cache, {}, last)).argmax(-1);
        },
        3, budget_s);
  }
  // decode: prefill once per repeat, then `steps` single-token steps with the cache; only the
  // steps are timed.
  double total = 0;
  int runs = 0;
  const auto next = torch::randint(0, c.config.vocab_size, {c.batch, 1}, torch::kLong);
  median_seconds(
      [&] {
        c3::KVCache cache;
        model->prefill(model->embed(ids), cache);
        const auto t0 = Clock::now();
        for (int64_t s = 0; s < c.steps; ++s) model->logits(model->step(model->embed(next), cache));
        total += std::chrono::duration<double>(Clock::now() - t0).count();
        ++runs;
      },
      2, budget_s);
  return static_cast<double>(c.batch * c.steps * runs) / total;
}

// The operators of `c.steps` decoding steps after the prompt: calls and time per step, the busiest first.
void profile_decode(const Case& c) {
  c3::configure_threads(c.threads);
  torch::NoGradGuard no_grad;
  c3::Qwen2ForCausalLM model = load_model(c);
  const auto ids = torch::randint(0, c.config.vocab_size, {c.batch, c.prompt}, torch::kLong);
  const auto next = torch::randint(0, c.config.vocab_size, {c.batch, 1}, torch::kLong);
  c3::KVCache cache;
  model->prefill(model->embed(ids), cache);
  for (int s = 0; s < 4; ++s) model->logits(model->step(model->embed(next), cache));  // warm-up
  std::map<std::string, c3bench::OpProfile::Entry> entries;
  {
    c3bench::OpProfile profile;
    for (int64_t s = 0; s < c.steps; ++s) model->logits(model->step(model->embed(next), cache));
    entries = profile.entries();
  }
  std::vector<std::pair<std::string, c3bench::OpProfile::Entry>> sorted(entries.begin(), entries.end());
  std::sort(sorted.begin(), sorted.end(),
            [](const auto& a, const auto& b) { return a.second.seconds > b.second.seconds; });
  double total = 0, calls = 0;
  for (const auto& [name, e] : sorted) total += e.seconds, calls += static_cast<double>(e.calls);
  const double steps = static_cast<double>(c.steps);
  std::printf("\ndecode batch %lld, where a step's time goes (profiled: %.0f top-level ops and %.2f ms per step)\n",
              static_cast<long long>(c.batch), calls / steps, total / steps * 1e3);
  std::printf("%-36s %10s %10s %7s\n", "operator", "calls/step", "us/step", "share");
  for (size_t i = 0; i < sorted.size() && i < 16; ++i) {
    const auto& [name, e] = sorted[i];
    std::printf("%-36s %10.1f %10.1f %6.1f%%\n", name.c_str(), static_cast<double>(e.calls) / steps,
                e.seconds / steps * 1e6, 100 * e.seconds / total);
  }
}

// A case with and without fused projections, interleaved round by round in one process so that
// both meet the same machine (on a shared host the speed drifts by 10% from run to run).
void compare_fused(const Case& c, int rounds) {
  c3::configure_threads(c.threads);
  torch::NoGradGuard no_grad;
  Case unfused_case = c;
  unfused_case.fused = false;
  std::vector<c3::Qwen2ForCausalLM> models{load_model(unfused_case), load_model(c)};
  const auto ids = torch::randint(0, c.config.vocab_size, {c.batch, c.prompt}, torch::kLong);
  const auto next = torch::randint(0, c.config.vocab_size, {c.batch, 1}, torch::kLong);
  std::vector<std::vector<double>> seconds(2);
  for (int r = 0; r < rounds; ++r) {
    for (size_t m = 0; m < models.size(); ++m) {
      auto& model = models[m];
      c3::KVCache cache;
      auto t0 = Clock::now();
      model->prefill(model->embed(ids), cache);
      if (c.mode == "decode") {
        t0 = Clock::now();
        for (int64_t s = 0; s < c.steps; ++s) model->logits(model->step(model->embed(next), cache));
      }
      if (r > 0) seconds[m].push_back(std::chrono::duration<double>(Clock::now() - t0).count());
    }
  }
  for (auto& v : seconds) std::sort(v.begin(), v.end());
  const double tokens = static_cast<double>(c.batch * (c.mode == "decode" ? c.steps : c.prompt));
  const double unfused = tokens / seconds[0][seconds[0].size() / 2], fused = tokens / seconds[1][seconds[1].size() / 2];
  std::printf("%-8s %-6lld %-14s %14.1f %14.1f %9.2fx\n", c.mode.c_str(), static_cast<long long>(c.batch),
              shape_label(c).c_str(), unfused, fused, fused / unfused);
}

std::vector<Case> policy_cases(int cores, const c3::Qwen2Config& tiny, const c3::Qwen2Config& small) {
  return {{"tiny", tiny, "prefill", 4, 256, 0, at::kFloat, cores},
          {"tiny", tiny, "decode", 4, 64, 64, at::kFloat, cores},
          {"0.5b-4L", small, "prefill", 1, 256, 0, at::kFloat, cores},
          {"0.5b-4L", small, "decode", 1, 128, 16, at::kFloat, cores}};
}

// Runs the policy cases in a child process under `policy` ("" = unset); returns tokens/s per case.
std::vector<double> run_policy_child(const char* self, const std::string& policy, bool quick) {
  const std::string env = policy.empty() ? "env -u OMP_WAIT_POLICY " : "env OMP_WAIT_POLICY=" + policy + " ";
  const std::string cmd = env + "'" + self + "' --policy-child" + (quick ? " --quick" : "");
  std::vector<double> out;
  if (FILE* p = ::popen(cmd.c_str(), "r")) {
    double v;
    while (std::fscanf(p, "%lf", &v) == 1) out.push_back(v);
    ::pclose(p);
  }
  return out;
}

// --model DIR: the table a CPU user reads (bench/vs_llamacpp.py runs it beside llama.cpp).
int run_model(const std::string& dir, at::ScalarType dtype, int threads, bool quick, bool fused, bool int8,
              bool profile, const std::string& json_path) {
  const std::string config_file = dir + "/config.json";
  const c3::Qwen2Config config = c3::Qwen2Config::from_json(c3::io::read_json_file(config_file), config_file);
  const std::string name = std::filesystem::path(dir).lexically_normal().filename().string();
  const int64_t steps = quick ? 8 : 32;
  std::vector<Case> cases;
  for (int64_t prompt : {64, 256, 1024}) cases.push_back({name, config, "prefill", 1, prompt, 0, dtype, threads, dir});
  cases.push_back({name, config, "first", 1, 64, 0, dtype, threads, dir});
  for (int64_t batch : {1, 8, 32}) cases.push_back({name, config, "decode", batch, 64, steps, dtype, threads, dir});
  for (auto& c : cases) c.fused = fused, c.int8 = int8;
  std::printf("%s (%.1fM parameters) on CPU: LibTorch %s, BLAS %s, %d threads, %s, projections %s\n", name.c_str(),
              static_cast<double>(config.parameter_count()) / 1e6, c3::compat::torch_version().c_str(),
              c3::blas_backend().c_str(), threads,
              (c3::scalar_type_name(dtype) + (int8 ? ", int8 decoding" : "")).c_str(), fused ? "fused" : "unfused");
  std::printf("%-8s %-6s %-14s %14s\n", "mode", "batch", "prompt+steps", "tokens/s (s)");
  nlohmann::json rows = nlohmann::json::array();
  for (const auto& c : cases) {
    const double value = run_case(c, quick ? 0.3 : 2.0);
    std::printf("%-8s %-6lld %-14s %14.4g\n", c.mode.c_str(), static_cast<long long>(c.batch), shape_label(c).c_str(),
                value);
    std::fflush(stdout);
    nlohmann::json r = row(c, c.mode == "first" ? 0.0 : value, "default");
    if (c.mode == "first") r["seconds"] = value;
    rows.push_back(r);
  }
  if (!json_path.empty()) std::ofstream(json_path) << rows.dump(2) << "\n";
  if (profile) profile_decode({name, config, "decode", 1, 64, steps, dtype, threads, dir, fused, int8});
  std::printf("\nfused projections against unfused, interleaved in one process (median of %d rounds, tokens/s)\n",
              quick ? 3 : 20);
  std::printf("%-8s %-6s %-14s %14s %14s %10s\n", "mode", "batch", "prompt+steps", "unfused", "fused", "ratio");
  for (const Case& c : {Case{name, config, "prefill", 1, 256, 0, dtype, threads, dir, true, int8},
                        Case{name, config, "decode", 1, 64, 16, dtype, threads, dir, true, int8},
                        Case{name, config, "decode", 8, 64, 16, dtype, threads, dir, true, int8}})
    compare_fused(c, quick ? 4 : 21);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  bool quick = false, policy_child = false, profile = false, fused = false, int8 = false;
  std::string json_path, model_dir, dtype_name = "float32";
  int threads = 0;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--quick")
      quick = true;
    else if (a == "--profile")
      profile = true;
    else if (a == "--fused")
      fused = true;
    else if (a == "--int8")
      int8 = true;
    else if (a == "--policy-child")
      policy_child = true;
    else if (a == "--json" && i + 1 < argc)
      json_path = argv[++i];
    else if (a == "--model" && i + 1 < argc)
      model_dir = argv[++i];
    else if (a == "--dtype" && i + 1 < argc)
      dtype_name = argv[++i];
    else if (a == "--threads" && i + 1 < argc)
      threads = std::stoi(argv[++i]);
    else {
      std::fprintf(stderr,
                   "usage: %s [--quick] [--json FILE] | --model DIR [--dtype float32|bfloat16] [--threads N] [--quick] "
                   "[--profile] [--fused] [--int8] [--json FILE]\n",
                   argv[0]);
      return 2;
    }
  }
  const int cores = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  if (!model_dir.empty())
    return run_model(model_dir, c3::scalar_type_from_name(dtype_name), threads > 0 ? threads : cores, quick, fused,
                     int8, profile, json_path);
  const double budget = quick ? 0.3 : 2.0;
  c3::Qwen2Config tiny = c3::Qwen2Config::preset("tiny");
  c3::Qwen2Config small = c3::Qwen2Config::preset("0.5b");  // Qwen2.5-0.5B geometry, 4 of 24 layers
  small.num_hidden_layers = 4;

  if (policy_child) {
    for (const auto& c : policy_cases(cores, tiny, small)) std::printf("%.3f\n", run_case(c, budget));
    return 0;
  }
  const char* policy = std::getenv("OMP_WAIT_POLICY");

  std::vector<Case> cases;
  for (int threads : {1, cores}) {
    cases.push_back({"tiny", tiny, "prefill", 4, 256, 0, at::kFloat, threads});
    cases.push_back({"tiny", tiny, "decode", 4, 64, 64, at::kFloat, threads});
    cases.push_back({"0.5b-4L", small, "prefill", 1, 256, 0, at::kFloat, threads});
    cases.push_back({"0.5b-4L", small, "decode", 1, 128, quick ? 8 : 32, at::kFloat, threads});
    cases.push_back({"0.5b-4L", small, "prefill", 1, 256, 0, at::kBFloat16, threads});
  }
  if (cores == 1) cases.resize(cases.size() / 2);

  std::printf("Qwen2 forward on CPU: LibTorch %s, BLAS %s, %d cores, OMP_WAIT_POLICY=%s\n",
              c3::compat::torch_version().c_str(), c3::blas_backend().c_str(), cores, policy ? policy : "(default)");
  std::printf("%-8s %-7s %-8s %-6s %-14s %7s %12s %10s\n", "model", "mode", "dtype", "batch", "prompt+steps", "threads",
              "tokens/s", "vs 1 thr");
  nlohmann::json rows = nlohmann::json::array();
  std::map<std::string, double> single;
  for (const auto& c : cases) {
    const double tps = run_case(c, budget);
    const std::string key = c.model + c.mode + c3::scalar_type_name(c.dtype);
    if (c.threads == 1) single[key] = tps;
    char ratio[32] = "";
    if (single.count(key)) std::snprintf(ratio, sizeof ratio, "%.2fx", tps / single[key]);
    std::printf("%-8s %-7s %-8s %-6lld %-14s %7d %12.1f %10s\n", c.model.c_str(), c.mode.c_str(),
                c3::scalar_type_name(c.dtype).c_str(), static_cast<long long>(c.batch), shape_label(c).c_str(),
                c.threads, tps, ratio);
    std::fflush(stdout);
    rows.push_back(row(c, tps, policy ? policy : "default"));
  }

  if (cores > 1) {
    const auto cases_ = policy_cases(cores, tiny, small);
    const auto spin = run_policy_child(argv[0], "", quick);
    const auto passive = run_policy_child(argv[0], "PASSIVE", quick);
    std::printf("\nOpenMP wait policy, %d threads (c3 keeps libgomp's default, spinning):\n", cores);
    std::printf("%-8s %-7s %-12s %16s %16s %9s\n", "model", "mode", "prompt+steps", "spin tokens/s", "passive tokens/s",
                "passive/spin");
    for (size_t i = 0; i < cases_.size() && i < spin.size() && i < passive.size(); ++i) {
      const Case& c = cases_[i];
      std::printf("%-8s %-7s %-12s %16.1f %16.1f %8.2fx\n", c.model.c_str(), c.mode.c_str(), shape_label(c).c_str(),
                  spin[i], passive[i], passive[i] / spin[i]);
      rows.push_back(row(c, spin[i], "spin"));
      rows.push_back(row(c, passive[i], "PASSIVE"));
    }
  }
  if (!json_path.empty()) std::ofstream(json_path) << rows.dump(2) << "\n";
  return 0;
}
