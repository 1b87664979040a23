// Greedy reconstruction as the authors generate (spec section 2): greedy decoding with a KV
// cache, no-repeat n-gram blocking over the whole sequence (prompt + generated), stop at <|im_end|>.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "c3/model/c3_model.h"
#include "c3/model/c3_prompt.h"
#include "c3/tokenizer/tokenizer.h"

namespace c3 {

class StopSignals;

// What one greedy_decode did.
struct DecodeStats {
  int64_t steps = 0;          // decoding steps (argmax transfers to the host)
  int64_t batch_shrinks = 0;  // times finished rows left the batch (and its cache)
  int64_t graph_replays = 0;  // token-feeding steps that replayed a CUDA graph
};

struct GenerateOptions {
  int64_t max_new_tokens = 4096;
  int64_t no_repeat_ngram_size = 20;  // 0 disables
  bool use_cache = true;              // false: recompute the whole sequence every step (tests, benchmarks)
  // The token-feeding step at fixed shapes over the reserved cache (KVCache::fix_shapes), replayed
  // as a CUDA graph on CUDA. Unset: on CUDA only (on the CPU, attending over the filled positions
  // alone is cheaper); set, forced either way (tests).
  std::optional<bool> fixed_shapes;
  bool cuda_graph = true;             // with fixed shapes on CUDA; false: launch each kernel
  DecodeStats* stats = nullptr;       // filled when given
  const StopSignals* stop = nullptr;  // when given, a stop signal ends decoding (throws Interrupted)
};

// Bans every token that would complete an n-gram already present in the sequence.
class NoRepeatNgram {
 public:
  explicit NoRepeatNgram(int64_t n) : n_(n) {}
  void append(int32_t token);           // extends the sequence
  std::vector<int32_t> banned() const;  // tokens banned for the next position

 private:
  int64_t n_;
  std::vector<int32_t> sequence_;
  std::unordered_map<std::string, std::vector<int32_t>> next_;  // (n-1)-gram bytes -> followers
};

// Greedy decoding of a batch of prompts given as input embeddings [B, P, hidden] of `lm`, right-padded:
// row r's prompt is its first prompt_ids[r].size() positions, whose token ids (for the n-gram
// history) are prompt_ids[r]. Each row stops at its own `stop_id` (or max_new_tokens); its
// no-repeat n-grams are its own, over prompt + output. Returns each row's generated ids without the
// stop token. (HF's generate() with left padding gives the same ids; tests/hf checks it.)
std::vector<std::vector<int32_t>> greedy_decode(Qwen2ForCausalLM& lm, const at::Tensor& prompt_embeds,
                                                const std::vector<std::vector<int32_t>>& prompt_ids, int32_t stop_id,
                                                const GenerateOptions& options);

// C3's reconstruction: latents [B, N, decoder hidden], one sequence per row, all after
// the same prompt. Each row stops at its own <|im_end|> (or max_new_tokens); its no-repeat n-grams
// are its own. Returns each row's generated ids without the closing <|im_end|>.
std::vector<std::vector<int32_t>> greedy_generate(C3Model& model, const C3Prompt& prompt, const at::Tensor& latents,
                                                  const GenerateOptions& options);

// Answers to rows laid out as make_c3_batch lays them (their prompts and contexts, of latents or of
// text; answers are ignored): one greedy decoding over the right-padded batch, each row stopping at
// its own <|im_end|>. Returns each row's generated ids without it.
std::vector<std::vector<int32_t>> generate_answers(C3Model& model, const std::vector<C3Example>& rows,
                                                   const GenerateOptions& options);

// Generated ids -> text as the spec says: decode without skipping special tokens, strip, drop a
// trailing <|im_end|>, strip again.
std::string decode_reconstruction(const Tokenizer& tokenizer, const std::vector<int32_t>& ids);

}  // namespace c3
