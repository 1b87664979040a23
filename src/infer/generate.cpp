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

std::vector<std::vector<int32_t>> greedy_decode(Qwen2ForCausalLM& lm, const at::Tensor& prompt_embeds,
                                                const std::vector<std::vector<int32_t>>& prompt_ids, int32_t stop_id,
                                                const GenerateOptions& options) {
  torch::NoGradGuard no_grad;
  const auto device = prompt_embeds.device();
  const int64_t b = prompt_embeds.size(0), p = prompt_embeds.size(1);
  if (static_cast<int64_t>(prompt_ids.size()) != b) throw Error("greedy_decode: one prompt_ids row per batch row");
  std::vector<int64_t> last(b);  // each row's last prompt position: its logits give the first token
  at::Tensor mask;               // [B, P + generated]; undefined while no row is padded
  std::vector<NoRepeatNgram> ngrams(b, NoRepeatNgram(options.no_repeat_ngram_size));
  for (int64_t r = 0; r < b; ++r) {
    const auto length = static_cast<int64_t>(prompt_ids[r].size());
    if (length < 1 || length > p) throw Error("greedy_decode: a prompt is empty or longer than the embeddings");
    last[r] = length - 1;
    for (int32_t id : prompt_ids[r]) ngrams[r].append(id);
  }
  if (std::any_of(last.begin(), last.end(), [&](int64_t l) { return l != p - 1; })) {
    mask = at::zeros({b, p}, at::kLong);
    for (int64_t r = 0; r < b; ++r) mask[r].narrow(0, 0, last[r] + 1).fill_(1);
    mask = mask.to(device);
  }

  // Only each row's last position is needed: the last layer runs there alone (output_rows).
  KVCache cache;
  if (options.use_cache) lm->model->reserve(cache, b, p + options.max_new_tokens, prompt_embeds.options());
  at::Tensor embeds = prompt_embeds;  // without the cache: the whole sequence so far
  at::Tensor hidden = lm->model->forward(prompt_embeds, mask, {}, options.use_cache ? &cache : nullptr,
                                         at::tensor(last, at::kLong).to(device).view({b, 1}));  // [B, 1, H]
  std::vector<std::vector<int32_t>> out(b);
  std::vector<bool> done(b, false);
  int64_t running = b;
  for (int64_t step = 0; step < options.max_new_tokens && running > 0; ++step) {
    at::Tensor logits = lm->logits(hidden.select(1, 0)).to(at::kFloat);  // [B, V]
    std::vector<int64_t> ban_rows, ban_cols;
    for (int64_t r = 0; r < b; ++r) {
      if (done[r]) continue;
      for (int32_t t : ngrams[r].banned()) ban_rows.push_back(r), ban_cols.push_back(t);
    }
    if (!ban_rows.empty())
      logits.index_put_({at::tensor(ban_rows, at::kLong).to(device), at::tensor(ban_cols, at::kLong).to(device)},
                        at::full({}, -std::numeric_limits<float>::infinity(), logits.options()));
    const at::Tensor next = logits.argmax(-1).to(at::kCPU);
    const auto next_ids = next.accessor<int64_t, 1>();
    std::vector<int64_t> fed(b);
    for (int64_t r = 0; r < b; ++r) {
      fed[r] = done[r] ? stop_id : next_ids[r];  // finished rows idle on the stop token
      if (done[r]) continue;
      const auto token = static_cast<int32_t>(next_ids[r]);
      if (token == stop_id) {
        done[r] = true, --running;
        continue;
      }
      out[r].push_back(token);
      ngrams[r].append(token);
    }
    if (running == 0) break;
    const at::Tensor token_embeds = lm->embed(at::tensor(fed, at::kLong).to(device).view({b, 1}));
    if (mask.defined()) mask = at::cat({mask, at::ones({b, 1}, mask.options())}, 1);
    if (options.use_cache) {
      hidden = lm->model->forward(token_embeds, mask, {}, &cache);
    } else {
      embeds = at::cat({embeds, token_embeds}, 1);
      hidden = lm->model->forward(embeds, mask, {}, nullptr, at::full({b, 1}, embeds.size(1) - 1, at::kLong).to(device));
    }
  }
  return out;
}

std::vector<std::vector<int32_t>> greedy_generate(C3Model& model, const C3Prompt& prompt, const at::Tensor& latents,
                                                  const GenerateOptions& options) {
  torch::NoGradGuard no_grad;
  const int64_t b = latents.size(0);
  const auto& prompt_ids = prompt.decoder_prompt();
  const at::Tensor row = at::tensor(std::vector<int64_t>(prompt_ids.begin(), prompt_ids.end()), at::kLong);
  const at::Tensor ids = row.to(latents.device()).unsqueeze(0).expand({b, row.size(0)}).contiguous();
  const at::Tensor embeds = model->decoder_embeds(ids, ids.eq(prompt.imgpad()), latents);
  return greedy_decode(model->decoder, embeds, std::vector<std::vector<int32_t>>(b, prompt_ids), prompt.im_end(),
                       options);
}

std::string decode_reconstruction(const Tokenizer& tokenizer, const std::vector<int32_t>& ids) {
  const std::string text = tokenizer.decode(ids);
  std::string_view decoded = unicode::strip_ascii_space(text);
  const std::string_view end = "<|im_end|>";
  if (decoded.size() >= end.size() && decoded.substr(decoded.size() - end.size()) == end)
    decoded = unicode::strip_ascii_space(decoded.substr(0, decoded.size() - end.size()));
  return std::string(decoded);
}

std::vector<std::string> reconstruct_texts(C3Model& model, const C3Prompt& prompt, const Tokenizer& tokenizer,
                                           const std::vector<const std::vector<int32_t>*>& texts,
                                           const GenerateOptions& options) {
  torch::NoGradGuard no_grad;
  const C3Batch batch = make_c3_batch(prompt, texts, /*with_answers=*/false).to(model->query.device());
  const at::Tensor latents = model->compress(batch.encoder_ids, batch.encoder_slots);
  std::vector<std::string> out;
  for (const auto& ids : greedy_generate(model, prompt, latents, options)) out.push_back(decode_reconstruction(tokenizer, ids));
  return out;
}

}  // namespace c3
