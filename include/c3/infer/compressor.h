// Batch compression of many documents into latent files (what `c3 compress` runs). Files stream
// through in windows: each window's spans are grouped by length into batches under a token budget.
// Batches depend only on the job list, never on which outputs already exist, so a run resumed
// after an interruption writes exactly what an uninterrupted run would.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "c3/infer/file_jobs.h"
#include "c3/infer/latent_file.h"
#include "c3/model/c3_model.h"
#include "c3/model/c3_prompt.h"
#include "c3/tokenizer/tokenizer.h"

namespace c3 {

struct CompressOptions {
  int64_t batch_tokens = 16384;   // padded encoder tokens per batch
  int64_t max_span_tokens = 0;    // longest span of text tokens (0: from max_length)
  int64_t max_length = 8192;      // the model's window, when max_span_tokens is 0
  at::ScalarType dtype = at::kFloat;  // of the stored latents
  FileJobOptions files;
};

struct Span {
  std::vector<int32_t> ids;
  int64_t begin = 0, end = 0;  // byte range in the text
  std::string joiner;          // whitespace after it in the text
};

// The longest span of text tokens: `max_span_tokens` when set (> 0), else what the model's window
// `max_length` leaves after the prompt around the text. Throws a UsageError when that is nothing.
int64_t span_token_limit(const C3Prompt& prompt, int64_t max_span_tokens, int64_t max_length);

// Cuts `text` into spans of at most `max_tokens` tokens, at token boundaries that fall on
// character boundaries; the spans cover the text in order.
std::vector<Span> cut_spans(const std::string& text, const Tokenizer& tokenizer, int64_t max_tokens);

JobSummary compress_files(C3Model& model, const Tokenizer& tokenizer, const C3Prompt& prompt,
                          const std::vector<FileJob>& jobs, const CompressOptions& options);

}  // namespace c3
