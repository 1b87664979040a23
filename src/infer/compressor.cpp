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

class CompressStep : public SpanBatchJob<Doc> {
 public:
  CompressStep(C3Codec& codec, const CompressOptions& options)
      : codec_(codec),
        prompt_(codec.prompt()),
        options_(options),
        span_limit_(span_limit(codec.model()->config(), prompt_, options.max_span_tokens, options.max_length).tokens),
        fingerprint_(codec.fingerprint()) {}

  int64_t open(Doc& doc) override {
    const FileJob& job = *doc.job;
    doc.text = read_input(job);
    if (const std::string problem = unusable_text_reason(doc.text); !problem.empty()) throw Error(problem);
    doc.spans = cut_spans(doc.text, codec_.tokenizer(), span_limit_);
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

  std::vector<std::pair<size_t, size_t>> batches(const std::vector<int64_t>& lengths) const override {
    return codec_.compress_batches(lengths, options_.batch_tokens);
  }

  void run(const std::vector<std::pair<Doc*, int64_t>>& spans, JobSummary&) override {
    std::vector<const std::vector<int32_t>*> texts;
    for (const auto& [doc, span] : spans) texts.push_back(&doc->spans[span].ids);
    const at::Tensor latents = codec_.compress(texts).to(at::kCPU);
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
  C3Codec& codec_;
  const C3Prompt& prompt_;
  const CompressOptions& options_;
  const int64_t span_limit_;
  const std::string fingerprint_;
};

}  // namespace

JobSummary compress_files(C3Codec& codec, const std::vector<FileJob>& jobs, const CompressOptions& options) {
  CompressStep step(codec, options);
  return run_span_batch_job<Doc>(jobs, step, "compress", options.files);
}

}  // namespace c3
