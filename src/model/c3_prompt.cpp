#include "c3/model/c3_prompt.h"

#include "c3/util/error.h"

namespace c3 {

const char* const kDefaultPromptTemplate =
    "<|im_start|>system\nYou should follow the instructions carefully and explain your answers in detail."
    "<|im_end|><|im_start|>user\n{latents}\n{instruction}<|im_end|><|im_start|>assistant\n";
const char* const kDefaultInstruction = "Repeat the text: ";
const char* const kContinueInstruction = "Continue the text: ";

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
  prefix_ = encode_piece(tokenizer, prompt_template.substr(0, at), instruction);
  block_.push_back(img_);
  block_.insert(block_.end(), latent_tokens, imgpad_);
  block_.push_back(img_end_);
  suffix_ = encode_piece(tokenizer, prompt_template.substr(at + marker.size()), instruction);
  decoder_prompt_ = decoder_prompt(1);
}

std::vector<int32_t> C3Prompt::decoder_prompt(int64_t blocks) const {
  std::vector<int32_t> ids(prefix_);
  for (int64_t i = 0; i < blocks; ++i) ids.insert(ids.end(), block_.begin(), block_.end());
  ids.insert(ids.end(), suffix_.begin(), suffix_.end());
  return ids;
}

std::vector<int32_t> C3Prompt::decoder_prompt_with_text(const std::vector<int32_t>& context) const {
  std::vector<int32_t> ids(prefix_);
  ids.insert(ids.end(), context.begin(), context.end());
  ids.insert(ids.end(), suffix_.begin(), suffix_.end());
  return ids;
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

std::vector<int32_t> decoder_prompt_of(const C3Example& e) {
  return e.context_text ? e.prompt->decoder_prompt_with_text(*e.context_text)
                        : e.prompt->decoder_prompt(static_cast<int64_t>(e.context.size()));
}

C3Batch make_c3_batch(const std::vector<C3Example>& examples) {
  if (examples.empty()) throw Error("empty batch");
  const int64_t b = static_cast<int64_t>(examples.size());
  const int64_t n = examples[0].prompt->latent_tokens();
  std::vector<std::vector<int32_t>> prompts;  // each row's decoder prompt
  int64_t spans = 0, te = 0, td = 0;
  bool with_answers = false;
  for (const auto& e : examples) {
    if (e.prompt->latent_tokens() != n) throw Error("make_c3_batch: prompts with different numbers of latents");
    if (e.context_text && !e.context.empty()) throw Error("make_c3_batch: a context of latents or of text, not both");
    prompts.push_back(decoder_prompt_of(e));
    spans += static_cast<int64_t>(e.context.size());
    for (const auto* span : e.context) te = std::max<int64_t>(te, static_cast<int64_t>(span->size()) + n + 2);
    const int64_t answer = e.answer ? static_cast<int64_t>(e.answer->size()) + (e.answer_ends ? 1 : 0) : 0;
    td = std::max<int64_t>(td, static_cast<int64_t>(prompts.back().size()) + answer);
    with_answers |= e.answer != nullptr;
  }
  const auto i64 = at::TensorOptions().dtype(at::kLong), boolean = at::TensorOptions().dtype(at::kBool);
  C3Batch batch;
  batch.decoder_ids = at::zeros({b, td}, i64);
  batch.decoder_mask = at::zeros({b, td}, i64);
  batch.decoder_slots = at::zeros({b, td}, boolean);
  if (with_answers) batch.labels = at::full({b, td}, kIgnoreIndex, i64);
  if (spans > 0) {
    batch.encoder_ids = at::zeros({spans, te}, i64);
    batch.encoder_mask = at::zeros({spans, te}, i64);
    batch.encoder_slots = at::zeros({spans, te}, boolean);
  }

  // Encoder row s is the s-th context span: its slots are the N positions after its <img>.
  if (spans > 0) {
    auto ids = batch.encoder_ids.accessor<int64_t, 2>(), mask = batch.encoder_mask.accessor<int64_t, 2>();
    auto slots = batch.encoder_slots.accessor<bool, 2>();
    int64_t s = 0;
    for (const auto& e : examples)
      for (const auto* span : e.context) {
        const auto enc = e.prompt->encoder_ids(*span);
        for (int64_t i = 0; i < static_cast<int64_t>(enc.size()); ++i) ids[s][i] = enc[i], mask[s][i] = 1;
        for (int64_t i = 0; i < n; ++i) slots[s][static_cast<int64_t>(span->size()) + 1 + i] = true;
        ++s;
      }
  }
  // Decoder row r: its prompt, whose blocks' <imgpad> are the slots, then the answer (supervised).
  auto dec_ids = batch.decoder_ids.accessor<int64_t, 2>(), dec_mask = batch.decoder_mask.accessor<int64_t, 2>();
  auto dec_slots = batch.decoder_slots.accessor<bool, 2>();
  for (int64_t r = 0; r < b; ++r) {
    const auto& p = prompts[r];
    const int64_t len = static_cast<int64_t>(p.size());
    for (int64_t i = 0; i < len; ++i) dec_ids[r][i] = p[i], dec_mask[r][i] = 1;
    const int64_t first_block = examples[r].prompt->prefix_tokens();
    for (int64_t j = 0; j < static_cast<int64_t>(examples[r].context.size()); ++j)
      for (int64_t i = 0; i < n; ++i) dec_slots[r][first_block + j * (n + 2) + 1 + i] = true;
    const auto* answer = examples[r].answer;
    if (!answer) continue;
    auto labels = batch.labels.accessor<int64_t, 2>();
    const int64_t m = static_cast<int64_t>(answer->size()), end = examples[r].answer_ends ? 1 : 0;
    for (int64_t i = 0; i < m + end; ++i) {
      const int64_t id = i < m ? (*answer)[i] : examples[r].prompt->im_end();
      dec_ids[r][len + i] = id, dec_mask[r][len + i] = 1, labels[r][len + i] = id;
    }
    batch.supervised_tokens += m + end;
  }
  return batch;
}

C3Batch make_c3_batch(const C3Prompt& prompt, const std::vector<const std::vector<int32_t>*>& texts,
                      bool with_answers) {
  std::vector<C3Example> examples;
  for (const auto* text : texts) examples.push_back({&prompt, {text}, with_answers ? text : nullptr});
  return make_c3_batch(examples);
}

}  // namespace c3
