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
  int64_t batch_tokens = 16384;       // padded encoder tokens per batch
  int64_t max_span_tokens = 0;        // longest span of text tokens (0: span_limit decides)
  int64_t max_length = 0;             // a window to fit spans in (0: span_limit decides)
  at::ScalarType dtype = at::kFloat;  // of the stored latents
  FileJobOptions files;
};

struct Span {
  std::vector<int32_t> ids;
  int64_t begin = 0, end = 0;  // byte range in the text
  std::string joiner;          // whitespace after it in the text
};

// Why a document cannot be compressed (or evaluated): not valid UTF-8, binary (NUL bytes), empty
// (whitespace only); "" when it can.
std::string unusable_text_reason(const std::string& text);

// The longest span of text compressed into one set of latents, and where the number comes from.
struct SpanLimit {
  int64_t tokens = 0;
  std::string source;  // for messages: "--max-span-tokens", "the longest text the model was trained on", ...
};
// `max_span_tokens` when set (> 0); else what a `max_length` window (> 0) leaves after the prompt
// around the text; else the longest text the model was trained to reconstruct
// (config.max_text_tokens); else what its trained window (config.max_length, else 8192) leaves.
// Warns when an explicit limit is longer than the texts the model was trained on; throws a
// UsageError when it leaves no room for text.
SpanLimit span_limit(const C3Config& config, const C3Prompt& prompt, int64_t max_span_tokens, int64_t max_length);

// Cuts `text` into spans of at most `max_tokens` tokens, at token boundaries that fall on
// character boundaries, each ending at a word boundary (a token that starts with or follows
// whitespace) when one lies in its last quarter; the spans cover the text in order.
std::vector<Span> cut_spans(const std::string& text, const Tokenizer& tokenizer, int64_t max_tokens);

JobSummary compress_files(C3Model& model, const Tokenizer& tokenizer, const C3Prompt& prompt,
                          const std::vector<FileJob>& jobs, const CompressOptions& options);

}  // namespace c3
