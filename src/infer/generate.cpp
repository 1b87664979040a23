#include "c3/infer/generate.h"

#include "c3/tokenizer/unicode.h"

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
  const auto device = latents.device();
  const int64_t b = latents.size(0);
  const auto& prompt_ids = prompt.decoder_prompt();
  const int64_t p = static_cast<int64_t>(prompt_ids.size());
  const auto ids_options = at::TensorOptions().dtype(at::kLong).device(device);
  const at::Tensor prompt_row = at::tensor(std::vector<int64_t>(prompt_ids.begin(), prompt_ids.end()), at::kLong).to(device);
  at::Tensor ids = prompt_row.unsqueeze(0).expand({b, p}).contiguous();
  const at::Tensor slots = ids.eq(prompt.imgpad());
  std::vector<NoRepeatNgram> ngrams(b, NoRepeatNgram(options.no_repeat_ngram_size));
  for (auto& ngram : ngrams)
    for (int32_t id : prompt_ids) ngram.append(id);

  KVCache cache;
  auto forward_full = [&] {  // the whole sequence so far, latents in their slots
    const at::Tensor all_slots = at::cat({slots, at::zeros({b, ids.size(1) - p}, slots.options())}, 1);
    return model->decoder->model->forward(model->decoder_embeds(ids, all_slots, latents));
  };
  at::Tensor hidden = options.use_cache
                          ? model->decoder->model->forward(model->decoder_embeds(ids, slots, latents), {}, {}, &cache)
                          : forward_full();
  std::vector<std::vector<int32_t>> out(b);
  std::vector<bool> done(b, false);
  int64_t running = b;
  for (int64_t step = 0; step < options.max_new_tokens && running > 0; ++step) {
    at::Tensor logits = model->decoder->logits(hidden.select(1, hidden.size(1) - 1)).to(at::kFloat);  // [B, V]
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
      fed[r] = done[r] ? prompt.im_end() : next_ids[r];  // finished rows idle on <|im_end|>
      if (done[r]) continue;
      const auto token = static_cast<int32_t>(next_ids[r]);
      if (token == prompt.im_end()) {
        done[r] = true, --running;
        continue;
      }
      out[r].push_back(token);
      ngrams[r].append(token);
    }
    if (running == 0) break;
    const at::Tensor tokens = at::tensor(fed, at::kLong).to(device).view({b, 1});
    if (options.use_cache) {
      hidden = model->decoder->model->forward(model->decoder->embed(tokens), {}, {}, &cache);
    } else {
      ids = at::cat({ids, tokens.to(ids_options)}, 1);
      hidden = forward_full();
    }
  }
  return out;
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
  const at::Tensor latents = model->compress(batch.encoder_ids, batch.encoder_mask, batch.encoder_slots);
  std::vector<std::string> out;
  for (const auto& ids : greedy_generate(model, prompt, latents, options)) out.push_back(decode_reconstruction(tokenizer, ids));
  return out;
}

}  // namespace c3
