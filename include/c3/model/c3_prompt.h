// Token layout of C3's two inputs (spec section 1) and the padded batches built from them.
//   encoder: TEXT <img> <imgpad>xN </img>
//   decoder: the prompt template with <img> <imgpad>xN </img> at {latents} and the instruction at
//            {instruction}; for training, TEXT <|im_end|> follows and only that is supervised.
// A context of k spans (a long document, the spans before the one to continue) is k such blocks at
// {latents}, in order, each the latents of one span compressed alone.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <string>
#include <vector>

#include "c3/tokenizer/tokenizer.h"

namespace c3 {

// The authors' "mpt" conversation template; {latents} and {instruction} are filled in.
extern const char* const kDefaultPromptTemplate;
extern const char* const kDefaultInstruction;   // "Repeat the text: "
extern const char* const kContinueInstruction;  // "Continue the text: "
inline constexpr int64_t kIgnoreIndex = -100;

class C3Prompt {
 public:
  // Special-token ids are resolved by string from `tokenizer`; a missing one is an error naming
  // the tokenizer's files. The template must contain {latents} exactly once.
  C3Prompt(const Tokenizer& tokenizer, int64_t latent_tokens,
           const std::string& prompt_template = kDefaultPromptTemplate,
           const std::string& instruction = kDefaultInstruction);

  int64_t latent_tokens() const { return latent_tokens_; }
  const std::string& prompt_template() const { return template_; }
  const std::string& instruction() const { return instruction_; }
  std::vector<int32_t> encoder_ids(const std::vector<int32_t>& text) const;       // TEXT <img> pad*N </img>
  const std::vector<int32_t>& decoder_prompt() const { return decoder_prompt_; }  // one block of latents
  // The prompt around `blocks` blocks of latents (0: no context), or around plain-text context tokens.
  std::vector<int32_t> decoder_prompt(int64_t blocks) const;
  std::vector<int32_t> decoder_prompt_with_text(const std::vector<int32_t>& context) const;
  int64_t prefix_tokens() const { return static_cast<int64_t>(prefix_.size()); }  // where the first block starts
  int64_t encoder_extra_tokens() const { return latent_tokens_ + 2; }
  int64_t decoder_extra_tokens() const { return static_cast<int64_t>(decoder_prompt_.size()) + 1; }  // + <|im_end|>
  int32_t im_end() const { return im_end_; }
  int32_t imgpad() const { return imgpad_; }

 private:
  int64_t latent_tokens_;
  std::string template_, instruction_;
  int32_t img_, img_end_, imgpad_, im_end_;
  std::vector<int32_t> prefix_, block_, suffix_;  // the template before {latents}, one block, after
  std::vector<int32_t> decoder_prompt_;
};

// A right-padded batch for C3Model (ids/masks int64, slots bool, labels int64 with kIgnoreIndex).
struct C3Batch {
  at::Tensor encoder_ids, encoder_mask, encoder_slots;  // [B, Te]
  at::Tensor decoder_ids, decoder_mask, decoder_slots;  // [B, Td]
  at::Tensor labels;                                    // [B, Td], aligned with decoder_ids (unshifted)
  int64_t supervised_tokens = 0;                        // labels != kIgnoreIndex after the shift
  // Encoder rows are the context spans of every decoder row in order, so the latents [S, N, H]
  // fill the decoder's slots row-major as they come. Undefined when no row has a context.
  int64_t size() const { return decoder_ids.size(0); }
  bool has_context() const { return encoder_ids.defined(); }
  C3Batch to(const at::Device& device) const;  // all but the masks, which only the host reads (token counts)
};

// One decoder row: the spans compressed into its context (k >= 0 blocks of latents, in order), the
// prompt whose instruction it follows, and the answer it learns (supervised, then <|im_end|>).
struct C3Example {
  const C3Prompt* prompt = nullptr;
  std::vector<const std::vector<int32_t>*> context;
  const std::vector<int32_t>* answer = nullptr;  // nullptr: the prompt alone (generation)
  // Evaluation's reference: this context as plain tokens in the prompt, where the blocks would be
  // (`context` then empty).
  const std::vector<int32_t>* context_text = nullptr;
  bool answer_ends = true;  // the answer is followed by <|im_end|>, supervised; false: the text alone is scored
};

// The decoder prompt of a row: its prompt around its blocks of latents, or around its text context.
std::vector<int32_t> decoder_prompt_of(const C3Example& example);

// Labels are defined when some example has an answer. Every prompt must have the same N.
C3Batch make_c3_batch(const std::vector<C3Example>& examples);

// Reconstruction: each text is the context and, with_answers, the answer (training); otherwise the
// decoder sequence is the prompt alone (generation) and labels are undefined.
C3Batch make_c3_batch(const C3Prompt& prompt, const std::vector<const std::vector<int32_t>*>& texts, bool with_answers);

}  // namespace c3
