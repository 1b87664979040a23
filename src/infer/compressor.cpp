#include "c3/infer/compressor.h"

#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <iostream>
#include <limits>
#include <map>

#include "c3/model/qwen2.h"
#include "c3/tokenizer/unicode.h"
#include "c3/util/atomic_file.h"
#include "c3/util/dtype.h"
#include "c3/util/error.h"
#include "c3/util/sha256.h"
#include "c3/version.h"
#include "span_batch_job.h"

namespace fs = std::filesystem;

namespace c3 {
namespace {

std::string read_input(const FileJob& job) {
  if (job.from_stdin()) return std::string(std::istreambuf_iterator<char>(std::cin), {});
  return read_text_file(job.source);
}

// One document of the current window.
struct Doc : JobDoc {
  std::string text;
  std::vector<Span> spans;
  at::Tensor latents;  // [spans, N, H], filled batch by batch
};

void write_output(const Doc& doc, const std::string& fingerprint, const std::string& prompt_template,
                  at::ScalarType dtype) {
  LatentFile file;
  file.latents = doc.latents.to(dtype);
  file.model_fingerprint = fingerprint;
  file.source_path = doc.job->name;
  file.source_sha256 = sha256_hex(doc.text);
  file.prompt_template = prompt_template;
  file.c3_version = C3_VERSION;
  file.job_key = doc.key;
  for (const auto& s : doc.spans) {
    file.span_tokens.push_back(static_cast<int64_t>(s.ids.size()));
    file.span_bytes.emplace_back(s.begin, s.end);
    file.span_joiners.push_back(s.joiner);
  }
  if (!doc.job->to_stdout()) {
    std::error_code ec;
    if (doc.job->output.has_parent_path()) fs::create_directories(doc.job->output.parent_path(), ec);
    write_latent_file(doc.job->output, file);
    return;
  }
  // stdout: through a temporary file, then copied out whole.
  const fs::path temp = fs::temp_directory_path() / ("c3-stdout-" + std::to_string(::getpid()) + ".c3");
  write_latent_file(temp, file);
  const std::string bytes = read_text_file(temp);
  fs::remove(temp);
  std::fwrite(bytes.data(), 1, bytes.size(), stdout);
  std::fflush(stdout);
}

}  // namespace

std::string unusable_text_reason(const std::string& text) {
  if (!unicode::is_valid_utf8(text)) return "not valid UTF-8 text";
  if (text.find('\0') != std::string::npos) return "binary, not text (it holds NUL bytes)";
  if (std::all_of(text.begin(), text.end(), unicode::is_ascii_space)) return "empty (no text to compress)";
  return "";
}

SpanLimit span_limit(const C3Config& config, const C3Prompt& prompt, int64_t max_span_tokens, int64_t max_length) {
  const int64_t prompt_tokens = std::max(prompt.encoder_extra_tokens(), prompt.decoder_extra_tokens());
  const int64_t window = config.max_length > 0 ? config.max_length : 8192;
  SpanLimit limit;
  if (max_span_tokens > 0)
    limit = {max_span_tokens, "--max-span-tokens"};
  else if (max_length > 0)
    limit = {max_length - prompt_tokens, "what the " + std::to_string(max_length) + "-token --max-length leaves"};
  else if (config.max_text_tokens > 0)
    limit = {config.max_text_tokens, "the longest text the model was trained to reconstruct"};
  else
    limit = {window - prompt_tokens,
             "what the " + std::to_string(window) + "-token window the model was trained with leaves"};
  if (limit.tokens <= 0) throw UsageError("the window leaves no room for text (raise --max-span-tokens)");
  if (config.max_text_tokens > 0 && limit.tokens > config.max_text_tokens)
    spdlog::warn(
        "spans of up to {} tokens ({}) are longer than the {}-token texts this model was trained to reconstruct: "
        "expect much worse reconstructions past that length",
        limit.tokens, limit.source, config.max_text_tokens);
  return limit;
}

namespace {

// Whether a span may end before token `k` at a word boundary: token k starts with whitespace, or
// token k - 1 ends with it. Each token is decoded after its predecessor, so a sentencepiece "▁word"
// keeps its space.
bool word_boundary_before(const Tokenizer& tokenizer, const std::vector<int32_t>& ids, size_t k) {
  const std::string before = tokenizer.decode({ids[k - 1]});
  const std::string both = tokenizer.decode({ids[k - 1], ids[k]});
  if (!before.empty() && unicode::is_ascii_space(before.back())) return true;
  return both.size() > before.size() && both.compare(0, before.size(), before) == 0 &&
         unicode::is_ascii_space(both[before.size()]);
}

// Where a span starting at token `a` ends: `a + max_tokens`, moved back to a word boundary in the
// span's last quarter when there is one.
size_t span_end(const Tokenizer& tokenizer, const std::vector<int32_t>& ids, size_t a, int64_t max_tokens) {
  const size_t b = std::min(ids.size(), a + static_cast<size_t>(max_tokens));
  if (b == ids.size()) return b;
  const size_t lowest = a + std::max<size_t>(1, static_cast<size_t>(max_tokens - max_tokens / 4));
  for (size_t k = b; k >= lowest && k > a; --k)
    if (word_boundary_before(tokenizer, ids, k)) return k;
  return b;
}

}  // namespace

std::vector<Span> cut_spans(const std::string& text, const Tokenizer& tokenizer, int64_t max_tokens) {
  const std::vector<int32_t> ids = tokenizer.encode_text(text);
  std::vector<Span> spans;
  size_t a = 0;
  int64_t offset = 0;
  // The bytes of `text` from `offset` that a span decoding to `piece` covers, or -1. A sentencepiece
  // tokenizer drops the space that starts a sequence ("▁word" decodes to "word"): skipped spaces count.
  auto covered = [&](int64_t offset, const std::string& piece) -> int64_t {
    int64_t skip = 0;
    while (true) {
      if (text.compare(offset + skip, piece.size(), piece) == 0) return skip + static_cast<int64_t>(piece.size());
      if (offset + skip >= static_cast<int64_t>(text.size()) || !unicode::is_ascii_space(text[offset + skip]))
        return -1;
      ++skip;
    }
  };
  while (a < ids.size()) {
    size_t b = span_end(tokenizer, ids, a, max_tokens);
    std::string piece = tokenizer.decode(std::vector<int32_t>(ids.begin() + a, ids.begin() + b));
    // A cut inside a multi-byte character decodes to U+FFFD: move it back a token or two.
    for (int tries = 0; b < ids.size() && b > a + 1 && covered(offset, piece) < 0 && tries < 8; ++tries) {
      --b;
      piece = tokenizer.decode(std::vector<int32_t>(ids.begin() + a, ids.begin() + b));
    }
    const int64_t bytes = covered(offset, piece);
    Span span;
    span.ids.assign(ids.begin() + a, ids.begin() + b);
    span.begin = offset;
    span.end = std::min<int64_t>(static_cast<int64_t>(text.size()),
                                 offset + (bytes >= 0 ? bytes : static_cast<int64_t>(piece.size())));
    spans.push_back(std::move(span));
    offset = spans.back().end;
    a = b;
  }
  // Joiners: the whitespace around each cut and at the end, which reconstruction (it strips)
  // cannot restore.
  for (size_t i = 0; i < spans.size(); ++i) {
    int64_t ws_begin = spans[i].end, ws_end = spans[i].end;
    while (ws_begin > spans[i].begin && unicode::is_ascii_space(text[ws_begin - 1])) --ws_begin;
    if (i + 1 < spans.size())
      while (ws_end < spans[i + 1].end && unicode::is_ascii_space(text[ws_end])) ++ws_end;
    spans[i].joiner = text.substr(ws_begin, ws_end - ws_begin);
  }
  return spans;
}

namespace {

class CompressStep : public SpanBatchJob<Doc> {
 public:
  CompressStep(C3Model& model, const Tokenizer& tokenizer, const C3Prompt& prompt, const CompressOptions& options)
      : model_(model),
        tokenizer_(tokenizer),
        prompt_(prompt),
        options_(options),
        span_limit_(span_limit(model->config(), prompt, options.max_span_tokens, options.max_length).tokens),
        fingerprint_(model->fingerprint()) {}

  int64_t open(Doc& doc) override {
    const FileJob& job = *doc.job;
    doc.text = read_input(job);
    if (const std::string problem = unusable_text_reason(doc.text); !problem.empty()) throw Error(problem);
    doc.spans = cut_spans(doc.text, tokenizer_, span_limit_);
    // What makes the output's bytes: the text, the model, the spans it is cut into, the dtype,
    // the prompt a reader will use.
    doc.key =
        job_key({{"source_sha256", sha256_hex(doc.text)},
                 {"model", fingerprint_},
                 {"span_limit", span_limit_},
                 {"span_cutter", 3},  // 2: sentencepiece spans no longer shrink to single tokens; 3: word boundaries
                 {"dtype", scalar_type_name(options_.dtype)},
                 {"prompt_template", prompt_.prompt_template()},
                 {"format_version", kLatentFormatVersion}});
    if (!job.to_stdout()) {
      const std::string recorded = latent_job_key(job.output);
      std::error_code ec;
      doc.up_to_date = !options_.files.force && !recorded.empty() && recorded == doc.key;
      doc.redo = !doc.up_to_date && fs::exists(job.output, ec);
    }
    return static_cast<int64_t>(doc.spans.size());
  }

  int64_t span_length(const Doc& doc, int64_t span) const override {
    return static_cast<int64_t>(doc.spans[span].ids.size());
  }

  // Batches of at most options.batch_tokens padded encoder tokens (the text, N slots, 2 markers).
  std::vector<std::pair<size_t, size_t>> batches(const std::vector<int64_t>& lengths) const override {
    std::vector<int64_t> padded;
    for (int64_t length : lengths) padded.push_back(length + prompt_.latent_tokens() + 2);
    return length_batches(padded, options_.batch_tokens, std::numeric_limits<int64_t>::max());
  }

  void run(const std::vector<std::pair<Doc*, int64_t>>& spans, JobSummary&) override {
    std::vector<const std::vector<int32_t>*> texts;
    for (const auto& [doc, span] : spans) texts.push_back(&doc->spans[span].ids);
    const C3Batch batch = make_c3_batch(prompt_, texts, /*with_answers=*/false).to(model_->query.device());
    const at::Tensor latents = model_->compress(batch.encoder_ids, batch.encoder_slots).to(at::kCPU);
    for (size_t k = 0; k < spans.size(); ++k) {
      auto [doc, span] = spans[k];
      if (!doc->latents.defined())
        doc->latents = at::empty({static_cast<int64_t>(doc->spans.size()), prompt_.latent_tokens(), latents.size(2)},
                                 latents.options());
      doc->latents[span].copy_(latents[static_cast<int64_t>(k)]);
    }
  }

  void write(Doc& doc) override { write_output(doc, fingerprint_, prompt_.prompt_template(), options_.dtype); }

  bool written_by_c3(const fs::path& output) const override { return is_c3_latent_file(output); }

  void count_written(const Doc& doc, JobSummary& summary) const override {
    summary.spans += static_cast<int64_t>(doc.spans.size());
    summary.latent_tokens += static_cast<int64_t>(doc.spans.size()) * prompt_.latent_tokens();
    for (const auto& s : doc.spans) summary.text_tokens += static_cast<int64_t>(s.ids.size());
  }

  int64_t progress_tokens(const JobSummary& summary) const override { return summary.text_tokens; }

 private:
  C3Model& model_;
  const Tokenizer& tokenizer_;
  const C3Prompt& prompt_;
  const CompressOptions& options_;
  const int64_t span_limit_;
  const std::string fingerprint_;
};

}  // namespace

JobSummary compress_files(C3Model& model, const Tokenizer& tokenizer, const C3Prompt& prompt,
                          const std::vector<FileJob>& jobs, const CompressOptions& options) {
  CompressStep step(model, tokenizer, prompt, options);
  return run_span_batch_job<Doc>(jobs, step, "compress", options.files);
}

}  // namespace c3
