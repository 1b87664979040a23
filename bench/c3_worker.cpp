// bench_c3_worker: c3's half of bench/vs_hf.py, the side-by-side benchmark against Hugging Face
// transformers. Each call measures in a fresh process on a C3 checkpoint and inputs the driver
// wrote, and prints one JSON line.
//   bench_c3_worker train MODEL_DIR INPUTS STEPS DTYPE  tokens/s of a full training step (DTYPE
//       float32, or bfloat16: bf16 weights with fp32 master weights, moments and gradient sums)
//   bench_c3_worker compress MODEL_DIR INPUTS BATCH   documents/s
//   bench_c3_worker generate MODEL_DIR INPUTS BATCH NEW_TOKENS   greedy reconstruction tokens/s
//   bench_c3_worker tokenize TOKENIZER TEXTS.jsonl    encode MB/s (one thread)
//   bench_c3_worker --device DEVICE suite MODEL_DIR INPUTS PLAN.json   the device table: one load,
//       then the training step, the largest micro-batch that trains, compress and reconstruct at
//       each batch of the plan, each with the device's peak memory
// INPUTS (safetensors, int64): train_ids [steps, B, T]; docs [D, L] with doc_lengths [D];
// generate_ids [rows, T]. Model tasks run as `c3` runs: on the CPU in fp32 with every core; the
// suite in the plan's dtype.
#include <torch/cuda.h>
#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#if __has_include(<c10/cuda/CUDACachingAllocator.h>)
#include <c10/cuda/CUDACachingAllocator.h>
#define C3_BENCH_CUDA_STATS 1
#endif

#include "c3/infer/generate.h"
#include "c3/io/safetensors.h"
#include "c3/io/tensor_io.h"
#include "c3/model/c3_io.h"
#include "c3/model/c3_loss.h"
#include "c3/model/c3_prompt.h"
#include "c3/model/qwen2_io.h"
#include "c3/tokenizer/tokenizer.h"
#include "c3/train/optimizer.h"
#include "c3/util/dtype.h"
#include "c3/util/runtime.h"

namespace {

using Clock = std::chrono::steady_clock;
using Rows = std::vector<std::vector<int32_t>>;
using nlohmann::json;

c10::Device g_device = at::kCPU;  // --device

// Seconds since `start`, after the device has finished what was queued.
double seconds_since(Clock::time_point start) {
  if (g_device.is_cuda()) torch::cuda::synchronize();
  return std::chrono::duration<double>(Clock::now() - start).count();
}

// The device's peak allocated memory since the last reset(), in MiB (CUDA; null on the CPU, whose
// peak the driver takes from the process).
struct PeakMemory {
  static void reset() {
#ifdef C3_BENCH_CUDA_STATS
    if (g_device.is_cuda()) c10::cuda::CUDACachingAllocator::resetPeakStats(g_device.index());
#endif
  }
  static json mib() {
#ifdef C3_BENCH_CUDA_STATS
    if (g_device.is_cuda()) {
      const auto stats = c10::cuda::CUDACachingAllocator::getDeviceStats(g_device.index());
      return static_cast<double>(
                 stats.allocated_bytes[static_cast<size_t>(c10::CachingAllocator::StatType::AGGREGATE)].peak) /
             (1 << 20);
    }
#endif
    return nullptr;
  }
};

at::Tensor read_ids(const std::string& file, const std::string& name) {
  const c3::io::SafetensorsReader in(file);
  return c3::io::load_tensor(in.at(name), at::kLong, at::kCPU, file);
}

// [B, T] ids -> rows, each cut to its length (lengths undefined: whole rows).
Rows rows_of(const at::Tensor& ids, const at::Tensor& lengths = {}) {
  Rows rows(ids.size(0));
  for (int64_t r = 0; r < ids.size(0); ++r) {
    const int64_t n = lengths.defined() ? lengths[r].item<int64_t>() : ids.size(1);
    const at::Tensor row = ids[r].narrow(0, 0, n).to(at::kInt).contiguous();
    rows[r].assign(row.data_ptr<int32_t>(), row.data_ptr<int32_t>() + n);
  }
  return rows;
}

// Rows [from, from + count), repeating from the start when `rows` runs out (a batch larger than the
// inputs' for the micro-batch search).
std::vector<const std::vector<int32_t>*> pointers(const Rows& rows, size_t from, size_t count, bool wrap = false) {
  std::vector<const std::vector<int32_t>*> out;
  const size_t end = wrap ? from + count : std::min(rows.size(), from + count);
  for (size_t i = from; i < end; ++i) out.push_back(&rows[i % rows.size()]);
  return out;
}

struct Loaded {
  c3::C3Model model{nullptr};
  std::unique_ptr<c3::Tokenizer> tokenizer;
  std::unique_ptr<c3::C3Prompt> prompt;
  explicit Loaded(const std::string& dir, at::ScalarType dtype = at::kFloat) {
    c3::C3LoadOptions o;
    o.dtype = dtype;
    o.device = g_device;
    model = c3::load_c3(dir, o);
    tokenizer = c3::load_tokenizer(dir);
    prompt = std::make_unique<c3::C3Prompt>(*tokenizer, model->config().latent_tokens);
  }
};

std::unique_ptr<c3::AdamW> make_optimizer(Loaded& m) {
  std::vector<c3::ParamGroup> groups;
  for (auto part : c3::all_c3_parts())
    groups.push_back({c3::c3_part_name(part), m.model->part_parameters(part), 1.0, false});
  return std::make_unique<c3::AdamW>(groups, c3::AdamWOptions{});
}

// What the trainer does per step with one micro-batch: loss over the supervised tokens, backward,
// global-norm clipping at 1.0, AdamW, gradients dropped. Returns the tokens of the batch.
int64_t train_step(Loaded& m, c3::AdamW& optimizer, const std::vector<const std::vector<int32_t>*>& texts) {
  const c3::C3Batch batch = c3::make_c3_batch(*m.prompt, texts, true).to(g_device);
  const auto out = c3::c3_loss(m.model, batch, 2048);
  (out.loss_sum / static_cast<double>(out.tokens)).backward();
  optimizer.accumulate_grads();  // bf16: into the fp32 sums, as the trainer does
  const double norm = optimizer.grad_norm();
  if (norm > 1.0) optimizer.scale_grads(1.0 / (norm + 1e-6));
  optimizer.step(1e-5);
  optimizer.zero_grad();
  return batch.encoder_mask.sum().item<int64_t>() + batch.decoder_mask.sum().item<int64_t>();
}

json train(Loaded& m, c3::AdamW& optimizer, const at::Tensor& ids, int64_t steps) {  // ids [steps, B, T]
  std::vector<double> times;
  int64_t tokens = 0;
  PeakMemory::reset();
  for (int64_t s = 0; s <= steps; ++s) {  // step 0 warms up
    const Rows texts = rows_of(ids[s % ids.size(0)]);
    const auto start = Clock::now();
    tokens = train_step(m, optimizer, pointers(texts, 0, texts.size()));
    if (s > 0) times.push_back(seconds_since(start));
  }
  std::sort(times.begin(), times.end());
  return {{"tokens_per_second", static_cast<double>(tokens) / times[times.size() / 2]},
          {"step_seconds", times[times.size() / 2]},
          {"tokens_per_step", tokens},
          {"peak_device_mib", PeakMemory::mib()}};
}

// The largest of `batches` (ascending) with which one training step runs without running out of
// device memory, each tried once; the search stops at the first that does not fit.
json largest_micro_batch(Loaded& m, c3::AdamW& optimizer, const at::Tensor& ids, const std::vector<int64_t>& batches) {
  const Rows texts = rows_of(ids[0]);
  json tried = json::array();
  int64_t largest = 0;
  for (const int64_t b : batches) {
    PeakMemory::reset();
    try {
      const auto start = Clock::now();
      train_step(m, optimizer, pointers(texts, 0, static_cast<size_t>(b), true));
      tried.push_back(
          {{"batch", b}, {"fits", true}, {"seconds", seconds_since(start)}, {"peak_device_mib", PeakMemory::mib()}});
      largest = b;
    } catch (const c10::Error& e) {  // c10::OutOfMemoryError, or a library's own "out of memory"
      if (dynamic_cast<const c10::OutOfMemoryError*>(&e) == nullptr &&
          std::string(e.what()).find("out of memory") == std::string::npos)
        throw;
      optimizer.zero_grad();
#ifdef C3_BENCH_CUDA_STATS
      if (g_device.is_cuda()) c10::cuda::CUDACachingAllocator::emptyCache();
#endif
      tried.push_back({{"batch", b}, {"fits", false}});
      break;
    }
  }
  return {{"largest_batch", largest}, {"tried", tried}};
}

json compress(Loaded& m, const Rows& docs, int64_t batch) {
  torch::NoGradGuard no_grad;
  const auto run = [&] {
    for (size_t i = 0; i < docs.size(); i += static_cast<size_t>(batch)) {
      const c3::C3Batch b =
          c3::make_c3_batch(*m.prompt, pointers(docs, i, static_cast<size_t>(batch)), false).to(g_device);
      m.model->compress(b.encoder_ids, b.encoder_slots);
    }
  };
  run();  // warm-up
  PeakMemory::reset();
  const auto start = Clock::now();
  run();
  return {{"documents_per_second", static_cast<double>(docs.size()) / seconds_since(start)},
          {"peak_device_mib", PeakMemory::mib()}};
}

json generate(Loaded& m, const Rows& texts, int64_t batch, int64_t new_tokens) {
  torch::NoGradGuard no_grad;
  const c3::C3Batch b =
      c3::make_c3_batch(*m.prompt, pointers(texts, 0, static_cast<size_t>(batch)), false).to(g_device);
  const at::Tensor latents = m.model->compress(b.encoder_ids, b.encoder_slots);
  c3::GenerateOptions o;
  o.max_new_tokens = new_tokens;
  c3::greedy_generate(m.model, *m.prompt, latents, o);  // warm-up
  PeakMemory::reset();
  const auto start = Clock::now();
  const auto out = c3::greedy_generate(m.model, *m.prompt, latents, o);
  const double seconds = seconds_since(start);
  int64_t produced = 0, longest = 0;
  for (const auto& row : out)
    produced += static_cast<int64_t>(row.size()), longest = std::max<int64_t>(longest, row.size());
  return {{"tokens_per_second", static_cast<double>(produced) / seconds},
          {"seconds_per_step", seconds / static_cast<double>(std::max<int64_t>(longest, 1))},
          {"peak_device_mib", PeakMemory::mib()},
          {"ids", out}};
}

json tokenize(const std::string& tokenizer_path, const std::string& texts_file) {
  c3::configure_threads(1);
  const auto tokenizer = c3::load_tokenizer(tokenizer_path);
  std::vector<std::string> texts;
  std::ifstream in(texts_file);
  size_t bytes = 0;
  for (std::string line; std::getline(in, line);) {
    texts.push_back(json::parse(line).at("text").get<std::string>());
    bytes += texts.back().size();
  }
  for (size_t i = 0; i < std::min<size_t>(texts.size(), 8); ++i) tokenizer->encode(texts[i]);  // warm-up
  const auto start = Clock::now();
  int64_t tokens = 0;
  for (const auto& t : texts) tokens += static_cast<int64_t>(tokenizer->encode(t).size());
  const double seconds = seconds_since(start);
  return {{"mb_per_second", static_cast<double>(bytes) / 1e6 / seconds}, {"tokens", tokens}};
}

// The device table's c3 column, in one process (one load of the model): PLAN is the JSON the
// driver wrote (dtype, recompute, train_steps, fit_batches, compress_batch, generate_batches,
// new_tokens).
json suite(const std::string& dir, const std::string& inputs, const std::string& plan_file) {
  const json plan = json::parse(std::ifstream(plan_file));
  Loaded m(dir, c3::scalar_type_from_name(plan.at("dtype").get<std::string>()));
  m.model->set_gradient_checkpointing(plan.at("recompute").get<bool>());
  json result;
  {
    auto optimizer = make_optimizer(m);
    const at::Tensor ids = read_ids(inputs, "train_ids");
    result["train"] = train(m, *optimizer, ids, plan.at("train_steps").get<int64_t>());
    result["fit"] = largest_micro_batch(m, *optimizer, ids, plan.at("fit_batches").get<std::vector<int64_t>>());
  }  // the optimizer's state is freed before inference
  m.model->set_gradient_checkpointing(false);
  result["compress"] = compress(m, rows_of(read_ids(inputs, "docs"), read_ids(inputs, "doc_lengths")),
                                plan.at("compress_batch").get<int64_t>());
  const Rows texts = rows_of(read_ids(inputs, "generate_ids"));
  for (const int64_t b : plan.at("generate_batches").get<std::vector<int64_t>>())
    result["generate_" + std::to_string(b)] = generate(m, texts, b, plan.at("new_tokens").get<int64_t>());
  return result;
}

json run_task(const std::vector<std::string>& a) {
  if (a.size() == 5 && a[0] == "train") {
    Loaded m(a[1], c3::scalar_type_from_name(a[4]));
    auto optimizer = make_optimizer(m);
    return train(m, *optimizer, read_ids(a[2], "train_ids"), std::stoll(a[3]));
  }
  if (a.size() == 4 && a[0] == "compress") {
    Loaded m(a[1]);
    return compress(m, rows_of(read_ids(a[2], "docs"), read_ids(a[2], "doc_lengths")), std::stoll(a[3]));
  }
  if (a.size() == 5 && a[0] == "generate") {
    Loaded m(a[1]);
    return generate(m, rows_of(read_ids(a[2], "generate_ids")), std::stoll(a[3]), std::stoll(a[4]));
  }
  if (a.size() == 3 && a[0] == "tokenize") return tokenize(a[1], a[2]);
  if (a.size() == 4 && a[0] == "suite") return suite(a[1], a[2], a[3]);
  throw std::invalid_argument(
      "usage: bench_c3_worker [--device D] train|compress|generate|tokenize|suite ... (see the source's header)");
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> a(argv + 1, argv + argc);
  try {
    if (a.size() >= 2 && a[0] == "--device") {
      g_device = c3::resolve_device(a[1]);
      a.erase(a.begin(), a.begin() + 2);
    }
    c3::configure_cpu_allocator();  // as the c3 binary runs
    if (!a.empty() && a[0] != "tokenize") c3::configure_threads(0);
    std::cout << run_task(a).dump() << "\n";
  } catch (const std::invalid_argument& e) {
    std::cerr << e.what() << "\n";
    return 2;
  } catch (const std::exception& e) {
    std::cerr << "bench_c3_worker: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
