#include "c3/infer/generate.h"

#include <cstring>

namespace c3 {
namespace {

std::string window_key(const std::vector<int32_t>& seq, size_t start, size_t length) {
  std::string key(length * sizeof(int32_t), '\0');
  std::memcpy(key.data(), seq.data() + start, key.size());
  return key;
}

std::string strip(const std::string& s) {
  const char* ws = " \t\n\r\f\v";
  const size_t a = s.find_first_not_of(ws);
  if (a == std::string::npos) return "";
  return s.substr(a, s.find_last_not_of(ws) - a + 1);
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

std::vector<int32_t> greedy_generate(C3Model& model, const C3Prompt& prompt, const at::Tensor& latents,
                                     const GenerateOptions& options) {
  torch::NoGradGuard no_grad;
  const auto device = latents.device();
  const auto& prompt_ids = prompt.decoder_prompt();
  const int64_t p = static_cast<int64_t>(prompt_ids.size());
  at::Tensor ids = at::tensor(std::vector<int64_t>(prompt_ids.begin(), prompt_ids.end()), at::kLong).view({1, p}).to(device);
  at::Tensor slots = ids.eq(prompt.imgpad());
  NoRepeatNgram ngram(options.no_repeat_ngram_size);
  for (int32_t id : prompt_ids) ngram.append(id);

  KVCache cache;
  at::Tensor hidden = model->decoder->model->forward(model->decoder_embeds(ids, slots, latents.unsqueeze(0)), {}, {}, &cache);
  std::vector<int32_t> out;
  for (int64_t step = 0; step < options.max_new_tokens; ++step) {
    at::Tensor logits = model->decoder->logits(hidden.select(1, hidden.size(1) - 1)).to(at::kFloat).squeeze(0);
    const auto banned = ngram.banned();
    if (!banned.empty())
      logits.index_fill_(0, at::tensor(std::vector<int64_t>(banned.begin(), banned.end()), at::kLong).to(device),
                         -std::numeric_limits<float>::infinity());
    const auto next = static_cast<int32_t>(logits.argmax().item<int64_t>());
    if (next == prompt.im_end()) break;
    out.push_back(next);
    ngram.append(next);
    at::Tensor token = at::full({1, 1}, next, at::TensorOptions().dtype(at::kLong).device(device));
    hidden = model->decoder->model->forward(model->decoder->embed(token), {}, {}, &cache);
  }
  return out;
}

std::vector<std::string> reconstruct_texts(C3Model& model, const C3Prompt& prompt, const Tokenizer& tokenizer,
                                           const std::vector<const std::vector<int32_t>*>& texts,
                                           const GenerateOptions& options) {
  torch::NoGradGuard no_grad;
  const auto device = model->query.device();
  std::vector<std::string> out;
  for (const auto* text : texts) {
    C3Batch batch = make_c3_batch(prompt, {text}, /*with_answers=*/false).to(device);
    at::Tensor latents = model->compress(batch.encoder_ids, batch.encoder_mask, batch.encoder_slots);
    const auto ids = greedy_generate(model, prompt, latents[0], options);
    std::string decoded = strip(tokenizer.decode(ids));
    const std::string end = "<|im_end|>";
    if (decoded.size() >= end.size() && decoded.compare(decoded.size() - end.size(), end.size(), end) == 0)
      decoded = strip(decoded.substr(0, decoded.size() - end.size()));
    out.push_back(decoded);
  }
  return out;
}

}  // namespace c3
