// bench_c3_worker: c3's half of bench/vs_hf.py, the side-by-side benchmark against Hugging Face
// transformers. Each call measures one thing in a fresh process (so its peak RSS is its own) on a
// C3 checkpoint and inputs the driver wrote, and prints one JSON line.
//   bench_c3_worker train MODEL_DIR INPUTS STEPS DTYPE  tokens/s of a full training step (DTYPE
//       float32, or bfloat16: bf16 weights with fp32 master weights, moments and gradient sums)
//   bench_c3_worker compress MODEL_DIR INPUTS BATCH   documents/s
//   bench_c3_worker generate MODEL_DIR INPUTS BATCH NEW_TOKENS   greedy reconstruction tokens/s
//   bench_c3_worker tokenize TOKENIZER TEXTS.jsonl    encode MB/s (one thread)
// INPUTS (safetensors, int64): train_ids [steps, B, T]; docs [D, L] with doc_lengths [D];
// generate_ids [16, T]. Model tasks run as `c3` runs: fp32 on the CPU, every core.
#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "c3/infer/generate.h"
#include "c3/io/safetensors.h"
#include "c3/model/c3_io.h"
#include "c3/model/c3_loss.h"
#include "c3/model/c3_prompt.h"
#include "c3/io/tensor_io.h"
#include "c3/model/qwen2_io.h"
#include "c3/tokenizer/tokenizer.h"
#include "c3/train/optimizer.h"
#include "c3/util/dtype.h"
#include "c3/util/runtime.h"

namespace {

using Clock = std::chrono::steady_clock;
using Rows = std::vector<std::vector<int32_t>>;

double seconds_since(Clock::time_point start) { return std::chrono::duration<double>(Clock::now() - start).count(); }

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

std::vector<const std::vector<int32_t>*> pointers(const Rows& rows, size_t from, size_t count) {
  std::vector<const std::vector<int32_t>*> out;
  for (size_t i = from; i < std::min(rows.size(), from + count); ++i) out.push_back(&rows[i]);
  return out;
}

struct Loaded {
  c3::C3Model model{nullptr};
  std::unique_ptr<c3::Tokenizer> tokenizer;
  std::unique_ptr<c3::C3Prompt> prompt;
  explicit Loaded(const std::string& dir, at::ScalarType dtype = at::kFloat) {
    c3::C3LoadOptions o;
    o.dtype = dtype;
    model = c3::load_c3(dir, o);
    tokenizer = c3::load_tokenizer(dir);
    prompt = std::make_unique<c3::C3Prompt>(*tokenizer, model->config().latent_tokens);
  }
};

// What the trainer does per step with one micro-batch: loss over the supervised tokens, backward,
// global-norm clipping at 1.0, AdamW, gradients dropped.
nlohmann::json train(const std::string& dir, const std::string& inputs, int64_t steps, const std::string& dtype) {
  Loaded m(dir, c3::scalar_type_from_name(dtype));
  std::vector<c3::ParamGroup> groups;
  for (auto part : c3::all_c3_parts()) groups.push_back({c3::c3_part_name(part), m.model->part_parameters(part), 1.0, false});
  c3::AdamW optimizer(groups, {});
  const at::Tensor ids = read_ids(inputs, "train_ids");  // [steps, B, T]
  std::vector<double> times, optimizer_times;
  int64_t tokens = 0;
  for (int64_t s = 0; s <= steps; ++s) {  // step 0 warms up
    const Rows texts = rows_of(ids[s % ids.size(0)]);
    const auto start = Clock::now();
    const c3::C3Batch batch = c3::make_c3_batch(*m.prompt, pointers(texts, 0, texts.size()), true);
    const auto out = c3::c3_loss(m.model, batch, 2048);
    (out.loss_sum / static_cast<double>(out.tokens)).backward();
    optimizer.accumulate_grads();  // bf16: into the fp32 sums, as the trainer does
    const auto update = Clock::now();
    const double norm = optimizer.grad_norm();
    if (norm > 1.0) optimizer.scale_grads(1.0 / (norm + 1e-6));
    optimizer.step(1e-5);
    optimizer.zero_grad();
    if (s > 0) times.push_back(seconds_since(start)), optimizer_times.push_back(seconds_since(update));
    tokens = batch.encoder_mask.sum().item<int64_t>() + batch.decoder_mask.sum().item<int64_t>();
  }
  std::sort(times.begin(), times.end());
  std::sort(optimizer_times.begin(), optimizer_times.end());
  return {{"tokens_per_second", static_cast<double>(tokens) / times[times.size() / 2]},
          {"step_seconds", times[times.size() / 2]}, {"optimizer_seconds", optimizer_times[times.size() / 2]},
          {"tokens_per_step", tokens}};
}

nlohmann::json compress(const std::string& dir, const std::string& inputs, int64_t batch) {
  Loaded m(dir);
  torch::NoGradGuard no_grad;
  const Rows docs = rows_of(read_ids(inputs, "docs"), read_ids(inputs, "doc_lengths"));
  const auto run = [&] {
    for (size_t i = 0; i < docs.size(); i += static_cast<size_t>(batch)) {
      const c3::C3Batch b = c3::make_c3_batch(*m.prompt, pointers(docs, i, static_cast<size_t>(batch)), false);
      m.model->compress(b.encoder_ids, b.encoder_mask, b.encoder_slots);
    }
  };
  run();  // warm-up
  const auto start = Clock::now();
  run();
  return {{"documents_per_second", static_cast<double>(docs.size()) / seconds_since(start)}};
}

nlohmann::json generate(const std::string& dir, const std::string& inputs, int64_t batch, int64_t new_tokens) {
  Loaded m(dir);
  torch::NoGradGuard no_grad;
  const Rows texts = rows_of(read_ids(inputs, "generate_ids"));
  const c3::C3Batch b = c3::make_c3_batch(*m.prompt, pointers(texts, 0, static_cast<size_t>(batch)), false);
  const at::Tensor latents = m.model->compress(b.encoder_ids, b.encoder_mask, b.encoder_slots);
  c3::GenerateOptions o;
  o.max_new_tokens = new_tokens;
  c3::greedy_generate(m.model, *m.prompt, latents, o);  // warm-up
  const auto start = Clock::now();
  const auto out = c3::greedy_generate(m.model, *m.prompt, latents, o);
  const double seconds = seconds_since(start);
  int64_t produced = 0;
  for (const auto& row : out) produced += static_cast<int64_t>(row.size());
  return {{"tokens_per_second", static_cast<double>(produced) / seconds}, {"ids", out}};
}

nlohmann::json tokenize(const std::string& tokenizer_path, const std::string& texts_file) {
  c3::configure_threads(1);
  const auto tokenizer = c3::load_tokenizer(tokenizer_path);
  std::vector<std::string> texts;
  std::ifstream in(texts_file);
  size_t bytes = 0;
  for (std::string line; std::getline(in, line);) {
    texts.push_back(nlohmann::json::parse(line).at("text").get<std::string>());
    bytes += texts.back().size();
  }
  for (size_t i = 0; i < std::min<size_t>(texts.size(), 8); ++i) tokenizer->encode(texts[i]);  // warm-up
  const auto start = Clock::now();
  int64_t tokens = 0;
  for (const auto& t : texts) tokens += static_cast<int64_t>(tokenizer->encode(t).size());
  const double seconds = seconds_since(start);
  return {{"mb_per_second", static_cast<double>(bytes) / 1e6 / seconds}, {"tokens", tokens}};
}

}  // namespace

int main(int argc, char** argv) {
  const std::vector<std::string> a(argv + 1, argv + argc);
  try {
    nlohmann::json result;
    c3::configure_cpu_allocator();  // as the c3 binary runs
    if (!a.empty() && a[0] != "tokenize") c3::configure_threads(0);
    if (a.size() == 5 && a[0] == "train") {
      result = train(a[1], a[2], std::stoll(a[3]), a[4]);
    } else if (a.size() == 4 && a[0] == "compress") {
      result = compress(a[1], a[2], std::stoll(a[3]));
    } else if (a.size() == 5 && a[0] == "generate") {
      result = generate(a[1], a[2], std::stoll(a[3]), std::stoll(a[4]));
    } else if (a.size() == 3 && a[0] == "tokenize") {
      result = tokenize(a[1], a[2]);
    } else {
      std::cerr << "usage: bench_c3_worker train|compress|generate|tokenize ... (see the source's header)\n";
      return 2;
    }
    std::cout << result.dump() << "\n";
  } catch (const std::exception& e) {
    std::cerr << "bench_c3_worker: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
