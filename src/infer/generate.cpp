#include "c3/infer/generate.h"

#include "c3/tokenizer/unicode.h"
#include "c3/util/error.h"

#include <algorithm>
#include <cstring>

namespace c3 {
namespace {

std::string window_key(const std::vector<int32_t>& seq, size_t start, size_t length) {
  std::string key(length * sizeof(int32_t), '\0');
  std::memcpy(key.data(), seq.data() + start, key.size());
  return key;
}

}  // namespace

void NoRepeatNgram::append(int32_t token) {
  sequence_.push_back(token);
  if (n_ <= 0 || static_cast<int64_t>(sequence_.size()) < n_) return;
  const size_t start = sequence_.size() - static_cast<size_t>(n_);
  next_[window_key(sequence_, start, static_cast<size_t>(n_ - 1))].push_back(token);
}

std::vector<int32_t> NoRepeatNgram::banned() const {
  if (n_ <= 0 || static_cast<int64_t>(sequence_.size()) + 1 < n_) return {};
  if (n_ == 1) {
    std::vector<int32_t> all;
    for (const auto& [key, followers] : next_) all.insert(all.end(), followers.begin(), followers.end());
    return all;
  }
  const size_t start = sequence_.size() - static_cast<size_t>(n_ - 1);
  auto it = next_.find(window_key(sequence_, start, static_cast<size_t>(n_ - 1)));
  return it == next_.end() ? std::vector<int32_t>{} : it->second;
}

std::vector<std::vector<int32_t>> greedy_generate(C3Model& model, const C3Prompt& prompt, const at::Tensor& latents,
                                                  const GenerateOptions& options) {
  torch::NoGradGuard no_grad;
  const int64_t b = latents.size(0), n = prompt.latent_tokens();
  // [B, k N, H]: a context of k spans, k blocks in the prompt.
  if (latents.dim() != 3 || latents.size(1) % n != 0 || latents.size(1) == 0)
    throw Error("greedy_generate: latents are not [B, k x " + std::to_string(n) + ", H]");
  const auto prompt_ids = prompt.decoder_prompt(latents.size(1) / n);
  const at::Tensor row = at::tensor(std::vector<int64_t>(prompt_ids.begin(), prompt_ids.end()), at::kLong);
  const at::Tensor ids = row.to(latents.device()).unsqueeze(0).expand({b, row.size(0)}).contiguous();
  const at::Tensor embeds = model->decoder_embeds(ids, ids.eq(prompt.imgpad()), latents);
  return greedy_decode(model->decoder, embeds, std::vector<std::vector<int32_t>>(b, prompt_ids), prompt.im_end(),
                       options);
}

std::vector<std::vector<int32_t>> generate_answers(C3Model& model, const std::vector<C3Example>& rows,
                                                   const GenerateOptions& options) {
  torch::NoGradGuard no_grad;
  std::vector<C3Example> prompts(rows);
  std::vector<std::vector<int32_t>> prompt_ids;
  for (auto& row : prompts) {
    row.answer = nullptr;
    prompt_ids.push_back(decoder_prompt_of(row));
  }
  const C3Batch batch = make_c3_batch(prompts).to(model->device());
  const at::Tensor embeds = batch.has_context()
                                ? model->decoder_embeds(batch.decoder_ids, batch.decoder_slots,
                                                        model->compress(batch.encoder_ids, batch.encoder_slots))
                                : model->decoder->embed(batch.decoder_ids);
  return greedy_decode(model->decoder, embeds, prompt_ids, rows.front().prompt->im_end(), options);
}

std::string decode_reconstruction(const Tokenizer& tokenizer, const std::vector<int32_t>& ids) {
  const std::string text = tokenizer.decode(ids);
  std::string_view decoded = unicode::strip_ascii_space(text);
  const std::string_view end = "<|im_end|>";
  if (decoded.size() >= end.size() && decoded.substr(decoded.size() - end.size()) == end)
    decoded = unicode::strip_ascii_space(decoded.substr(0, decoded.size() - end.size()));
  return std::string(decoded);
}

}  // namespace c3
