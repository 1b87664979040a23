#include "c3/model/c3_prompt.h"

#include "c3/util/error.h"

namespace c3 {

const char* const kDefaultPromptTemplate =
    "<|im_start|>system\nYou should follow the instructions carefully and explain your answers in detail."
    "<|im_end|><|im_start|>user\n{latents}\n{instruction}<|im_end|><|im_start|>assistant\n";
const char* const kDefaultInstruction = "Repeat the text: ";

namespace {

int32_t required_token(const Tokenizer& tokenizer, const std::string& token) {
  auto id = tokenizer.token_id(token);
  if (!id)
    fail_file(tokenizer.source(),
              "the tokenizer has no single token '" + token + "', which C3's prompt needs (add it as a special token)");
  return *id;
}

void replace_all(std::string& text, const std::string& from, const std::string& to) {
  for (size_t pos = text.find(from); pos != std::string::npos; pos = text.find(from, pos + to.size()))
    text.replace(pos, from.size(), to);
}

// A piece of the template with {instruction} filled in. The instruction is user text: when it holds
// a special-token string it is tokenized on its own, as plain text; otherwise with the template,
// as the authors' code does, so the default prompt keeps its exact ids.
std::vector<int32_t> encode_piece(const Tokenizer& tokenizer, const std::string& piece,
                                  const std::string& instruction) {
  const std::string marker = "{instruction}";
  if (tokenizer.encode(instruction) == tokenizer.encode_text(instruction)) {
    std::string text = piece;
    replace_all(text, marker, instruction);
    return tokenizer.encode(text);
  }
  std::vector<int32_t> out;
  size_t start = 0;
  while (true) {
    const size_t at = piece.find(marker, start);
    const auto part = tokenizer.encode(piece.substr(start, at == std::string::npos ? std::string::npos : at - start));
    out.insert(out.end(), part.begin(), part.end());
    if (at == std::string::npos) return out;
    const auto text = tokenizer.encode_text(instruction);
    out.insert(out.end(), text.begin(), text.end());
    start = at + marker.size();
  }
}

}  // namespace

C3Prompt::C3Prompt(const Tokenizer& tokenizer, int64_t latent_tokens, const std::string& prompt_template,
                   const std::string& instruction)
    : latent_tokens_(latent_tokens), template_(prompt_template), instruction_(instruction) {
  if (latent_tokens <= 0) throw UsageError("latent tokens must be positive, got " + std::to_string(latent_tokens));
  img_ = required_token(tokenizer, "<img>");
  img_end_ = required_token(tokenizer, "</img>");
  imgpad_ = required_token(tokenizer, "<imgpad>");
  im_end_ = required_token(tokenizer, "<|im_end|>");
  const std::string marker = "{latents}";
  const size_t at = prompt_template.find(marker);
  if (at == std::string::npos || prompt_template.find(marker, at + 1) != std::string::npos)
    throw UsageError("model.prompt_template must contain {latents} exactly once");
  // Added tokens are split out before BPE, so tokenizing around the slots equals tokenizing the
  // whole string with N <imgpad> in it.
  decoder_prompt_ = encode_piece(tokenizer, prompt_template.substr(0, at), instruction);
  decoder_prompt_.push_back(img_);
  decoder_prompt_.insert(decoder_prompt_.end(), latent_tokens, imgpad_);
  decoder_prompt_.push_back(img_end_);
  const auto tail = encode_piece(tokenizer, prompt_template.substr(at + marker.size()), instruction);
  decoder_prompt_.insert(decoder_prompt_.end(), tail.begin(), tail.end());
}

std::vector<int32_t> C3Prompt::encoder_ids(const std::vector<int32_t>& text) const {
  std::vector<int32_t> ids(text);
  ids.reserve(text.size() + latent_tokens_ + 2);
  ids.push_back(img_);
  ids.insert(ids.end(), latent_tokens_, imgpad_);
  ids.push_back(img_end_);
  return ids;
}

C3Batch C3Batch::to(const at::Device& device) const {
  C3Batch out = *this;
  // The masks stay where they are: right padding needs none on the device (Qwen2Model::forward).
  for (at::Tensor* t : {&out.encoder_ids, &out.encoder_slots, &out.decoder_ids, &out.decoder_slots, &out.labels})
    if (t->defined()) *t = t->to(device, /*non_blocking=*/true);
  return out;
}

C3Batch make_c3_batch(const C3Prompt& prompt, const std::vector<const std::vector<int32_t>*>& texts,
                      bool with_answers) {
  if (texts.empty()) throw Error("empty batch");
  const int64_t b = static_cast<int64_t>(texts.size());
  const int64_t n = prompt.latent_tokens();
  const auto& dec_prompt = prompt.decoder_prompt();
  const int64_t p = static_cast<int64_t>(dec_prompt.size());
  int64_t te = 0, td = p;
  for (const auto* text : texts) {
    te = std::max<int64_t>(te, static_cast<int64_t>(text->size()) + n + 2);
    if (with_answers) td = std::max<int64_t>(td, p + static_cast<int64_t>(text->size()) + 1);
  }
  const auto i64 = at::TensorOptions().dtype(at::kLong);
  C3Batch batch;
  batch.encoder_ids = at::zeros({b, te}, i64);
  batch.encoder_mask = at::zeros({b, te}, i64);
  batch.encoder_slots = at::zeros({b, te}, at::TensorOptions().dtype(at::kBool));
  batch.decoder_ids = at::zeros({b, td}, i64);
  batch.decoder_mask = at::zeros({b, td}, i64);
  batch.decoder_slots = at::zeros({b, td}, at::TensorOptions().dtype(at::kBool));
  if (with_answers) batch.labels = at::full({b, td}, kIgnoreIndex, i64);

  // The slots are the N positions after the first <img> (encoder) / in the prompt (decoder).
  int64_t prompt_slot = 0;
  while (prompt_slot < p && dec_prompt[prompt_slot] != prompt.imgpad()) ++prompt_slot;
  auto enc_ids = batch.encoder_ids.accessor<int64_t, 2>(), enc_mask = batch.encoder_mask.accessor<int64_t, 2>();
  auto dec_ids = batch.decoder_ids.accessor<int64_t, 2>(), dec_mask = batch.decoder_mask.accessor<int64_t, 2>();
  auto enc_slots = batch.encoder_slots.accessor<bool, 2>(), dec_slots = batch.decoder_slots.accessor<bool, 2>();
  for (int64_t r = 0; r < b; ++r) {
    const auto& text = *texts[r];
    const int64_t len = static_cast<int64_t>(text.size());
    const auto enc = prompt.encoder_ids(text);
    for (int64_t i = 0; i < static_cast<int64_t>(enc.size()); ++i) enc_ids[r][i] = enc[i], enc_mask[r][i] = 1;
    for (int64_t i = 0; i < n; ++i) enc_slots[r][len + 1 + i] = true;
    for (int64_t i = 0; i < p; ++i) dec_ids[r][i] = dec_prompt[i], dec_mask[r][i] = 1;
    for (int64_t i = 0; i < n; ++i) dec_slots[r][prompt_slot + i] = true;
    if (!with_answers) continue;
    auto labels = batch.labels.accessor<int64_t, 2>();
    for (int64_t i = 0; i <= len; ++i) {
      const int64_t id = i < len ? text[i] : prompt.im_end();
      dec_ids[r][p + i] = id, dec_mask[r][p + i] = 1, labels[r][p + i] = id;
    }
    batch.supervised_tokens += len + 1;
  }
  return batch;
}

}  // namespace c3
