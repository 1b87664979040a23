// c3_hf_probe: runs c3's model code on inputs the Hugging Face parity tests (tests/hf/*.py) write,
// and writes what c3 computes, so the tests can put it beside transformers' outputs.
//   c3_hf_probe qwen2-forward MODEL_DIR IN OUT
//       IN: input_ids, attention_mask [B, T] (right-padded). OUT: logits [B, T, V], hidden [B, T, H]
//       (the last hidden states, after the final norm), both float32.
//   c3_hf_probe qwen2-generate MODEL_DIR IN OUT MAX_NEW NO_REPEAT STOP_ID
//       IN as above. OUT: generated [B, MAX_NEW] int64 (c3::greedy_decode), -1 after a row's end.
//   c3_hf_probe c3 C3_DIR IN OUT MAX_NEW
//       IN: text_ids, text_mask [B, L] (right-padded text token ids). OUT: encoder_ids [B, Te],
//       latents [B, N, Hd], decoder_ids [B, Td], decoder_mask, decoder_logits [B, Td, V] (teacher
//       forced on prompt + text + <|im_end|>, as training sees it), generated [B, MAX_NEW] (greedy
//       reconstruction, spec section 2).
//       The c3 mode runs on C3_PROBE_DEVICE (default cpu) in C3_PROBE_DTYPE (default float32);
//       floating outputs are written as float32.
// Everything else runs on the CPU in float32. Errors: one line on stderr, exit 1.
#include <torch/torch.h>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "c3/infer/generate.h"
#include "c3/io/safetensors.h"
#include "c3/io/tensor_io.h"
#include "c3/model/c3_io.h"
#include "c3/model/c3_prompt.h"
#include "c3/model/qwen2_io.h"
#include "c3/tokenizer/tokenizer.h"
#include "c3/util/dtype.h"

namespace {

using c3::io::SafetensorsReader;

at::Tensor read(const SafetensorsReader& in, const std::string& name) {
  return c3::io::load_tensor(in.at(name), at::kLong, at::kCPU, in.path().string());
}

// Rows of ids -> [B, width] int64, -1 where a row has ended.
at::Tensor padded(const std::vector<std::vector<int32_t>>& rows, int64_t width) {
  at::Tensor out = at::full({static_cast<int64_t>(rows.size()), width}, -1, at::kLong);
  for (size_t r = 0; r < rows.size(); ++r)
    for (size_t i = 0; i < rows[r].size(); ++i) out[r][i] = rows[r][i];
  return out;
}

// The real (mask 1) ids of each row.
std::vector<std::vector<int32_t>> rows_of(const at::Tensor& ids, const at::Tensor& mask) {
  std::vector<std::vector<int32_t>> rows(ids.size(0));
  for (int64_t r = 0; r < ids.size(0); ++r)
    for (int64_t t = 0; t < ids.size(1); ++t)
      if (mask[r][t].item<int64_t>() != 0) rows[r].push_back(static_cast<int32_t>(ids[r][t].item<int64_t>()));
  return rows;
}

c3::Qwen2ForCausalLM load_fp32(const std::string& dir) {
  c3::LoadOptions o;
  o.dtype = at::kFloat;
  return c3::load_qwen2(dir, o);
}

void qwen2_forward(const std::string& model_dir, const SafetensorsReader& in, const std::string& out) {
  auto lm = load_fp32(model_dir);
  const at::Tensor hidden = lm->hidden_states(lm->embed(read(in, "input_ids")), read(in, "attention_mask"));
  c3::io::write_tensors(out, {{"logits", lm->logits(hidden)}, {"hidden", hidden}});
}

void qwen2_generate(const std::string& model_dir, const SafetensorsReader& in, const std::string& out, int64_t max_new,
                    int64_t no_repeat, int32_t stop) {
  auto lm = load_fp32(model_dir);
  const at::Tensor ids = read(in, "input_ids");
  c3::GenerateOptions o;
  o.max_new_tokens = max_new;
  o.no_repeat_ngram_size = no_repeat;
  const auto generated = c3::greedy_decode(lm, lm->embed(ids), rows_of(ids, read(in, "attention_mask")), stop, o);
  c3::io::write_tensors(out, {{"generated", padded(generated, max_new)}});
}

std::string env_or(const char* name, const char* fallback) {
  const char* value = std::getenv(name);
  return value && *value ? value : fallback;
}

// On the CPU, floating tensors as float32 (what the Python side compares).
at::Tensor portable(const at::Tensor& t) {
  const at::Tensor cpu = t.to(at::kCPU);
  return cpu.is_floating_point() ? cpu.to(at::kFloat) : cpu;
}

void c3_model(const std::string& model_dir, const SafetensorsReader& in, const std::string& out, int64_t max_new) {
  c3::C3LoadOptions lo;
  lo.device = c10::Device(env_or("C3_PROBE_DEVICE", "cpu"));
  lo.dtype = c3::scalar_type_from_name(env_or("C3_PROBE_DTYPE", "float32"));
  lo.merge_adapters = env_or("C3_PROBE_MERGE", "0") == "1";  // LoRA folded in, or run beside the weights
  c3::C3Model model = c3::load_c3(model_dir, lo);
  const auto tokenizer = c3::load_tokenizer(model_dir);
  const c3::C3Prompt prompt(*tokenizer, model->config().latent_tokens);
  const auto texts = rows_of(read(in, "text_ids"), read(in, "text_mask"));
  std::vector<const std::vector<int32_t>*> pointers;
  for (const auto& t : texts) pointers.push_back(&t);
  const c3::C3Batch batch = c3::make_c3_batch(prompt, pointers, /*with_answers=*/true).to(lo.device);
  const at::Tensor latents = model->compress(batch.encoder_ids, batch.encoder_slots);
  const at::Tensor embeds = model->decoder_embeds(batch.decoder_ids, batch.decoder_slots, latents);
  // As c3 trains: the right-padded batch without a mask (real positions are what is compared).
  const at::Tensor logits = model->decoder->logits(model->decoder->hidden_states(embeds));
  c3::GenerateOptions o;
  o.max_new_tokens = max_new;
  const auto generated = c3::greedy_generate(model, prompt, latents, o);
  c3::io::write_tensors(out, {{"encoder_ids", portable(batch.encoder_ids)},
                              {"latents", portable(latents)},
                              {"decoder_ids", portable(batch.decoder_ids)},
                              {"decoder_mask", portable(batch.decoder_mask)},
                              {"decoder_logits", portable(logits)},
                              {"generated", padded(generated, max_new)}});
}

}  // namespace

int main(int argc, char** argv) {
  const std::vector<std::string> a(argv + 1, argv + argc);
  try {
    torch::NoGradGuard no_grad;
    if (a.size() == 4 && a[0] == "qwen2-forward") {
      qwen2_forward(a[1], SafetensorsReader(a[2]), a[3]);
    } else if (a.size() == 7 && a[0] == "qwen2-generate") {
      qwen2_generate(a[1], SafetensorsReader(a[2]), a[3], std::stoll(a[4]), std::stoll(a[5]),
                     static_cast<int32_t>(std::stol(a[6])));
    } else if (a.size() == 5 && a[0] == "c3") {
      c3_model(a[1], SafetensorsReader(a[2]), a[3], std::stoll(a[4]));
    } else {
      std::fprintf(stderr, "usage: c3_hf_probe qwen2-forward|qwen2-generate|c3 ... (see the source's header)\n");
      return 2;
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "c3_hf_probe: %s\n", e.what());
    return 1;
  }
  return 0;
}
