#include "c3/infer/reconstructor.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstdio>
#include <iostream>
#include <iterator>
#include <limits>
#include <set>

#include "c3/infer/latent_file.h"
#include "c3/model/qwen2.h"
#include "c3/util/atomic_file.h"
#include "c3/util/dtype.h"
#include "c3/util/error.h"
#include "c3/util/output_record.h"
#include "c3/util/sha256.h"
#include "span_batch_job.h"

namespace fs = std::filesystem;

namespace c3 {
namespace {

struct Doc : JobDoc {
  LatentFile file;
  std::vector<std::string> texts;  // per span
};

// The job's latent file (from stdin for "-"), checked to come from this model; sets `bytes` to its
// bytes (for the job key). Errors name the file.
LatentFile read_checked(const FileJob& job, const std::string& fingerprint, const C3Model& model, std::string& bytes) {
  bytes = job.from_stdin() ? std::string(std::istreambuf_iterator<char>(std::cin), {}) : read_text_file(job.source);
  LatentFile file = read_latent_bytes(bytes, job.name);
  const int64_t n = model->config().latent_tokens, hidden = model->config().decoder.hidden_size;
  if (file.model_fingerprint != fingerprint || file.latents.size(1) != n || file.latents.size(2) != hidden)
    fail_file(job.name, "made by another model (fingerprint " + file.model_fingerprint.substr(0, 12) + ", " +
                            std::to_string(file.latents.size(1)) + " x " + std::to_string(file.latents.size(2)) +
                            " latents, c3 " + file.c3_version + ", from " + file.source_path + "), not by this one (" +
                            fingerprint.substr(0, 12) + ", " + std::to_string(n) + " x " + std::to_string(hidden) +
                            ")");
  return file;
}

// To stdout, or to the output file with its record (the job key, and the digest that shows c3
// wrote it).
void write_text(const FileJob& job, const std::string& text, const std::string& key) {
  if (job.to_stdout()) {
    std::fwrite(text.data(), 1, text.size(), stdout);
    if (text.empty() || text.back() != '\n') std::fputc('\n', stdout);
    std::fflush(stdout);
    return;
  }
  std::error_code ec;
  if (job.output.has_parent_path()) fs::create_directories(job.output.parent_path(), ec);
  write_recorded_output(job.output, text, key);
}

class ReconstructStep : public SpanBatchJob<Doc> {
 public:
  ReconstructStep(C3Codec& codec, const ReconstructOptions& options)
      : codec_(codec),
        options_(options),
        fingerprint_(codec.fingerprint()),
        // What makes an output's bytes besides its latent file: the model (and the dtype it runs
        // in), the prompt, the generation settings.
        settings_({{"model", fingerprint_},
                   {"dtype", scalar_type_name(codec.model()->dtype())},
                   {"quantize", codec.quantize()},
                   {"prompt", codec.prompt().decoder_prompt()},
                   {"whole_file", options.whole_file},
                   {"max_new_tokens", options.generate.max_new_tokens},
                   {"no_repeat_ngram_size", options.generate.no_repeat_ngram_size}}) {}

  int64_t open(Doc& doc) override {
    const FileJob& job = *doc.job;
    std::string bytes;
    doc.file = read_checked(job, fingerprint_, codec_.model(), bytes);
    nlohmann::json parts = settings_;
    parts["latents_sha256"] = sha256_hex(bytes);
    doc.key = job_key(parts);
    if (!job.to_stdout()) {
      std::error_code ec;
      doc.up_to_date = !options_.files.force && recorded_job_key(job.output) == doc.key;
      doc.redo = !doc.up_to_date && fs::exists(job.output, ec);
    }
    const int64_t sequences = options_.whole_file ? 1 : doc.file.latents.size(0);
    doc.texts.resize(sequences);
    return sequences;
  }

  int64_t span_length(const Doc& doc, int64_t span) const override {
    if (!options_.whole_file) return doc.file.span_tokens[span];
    int64_t total = 0;
    for (int64_t t : doc.file.span_tokens) total += t;
    return total;
  }

  // Batches of batch_size spans (by expected length, so their generations end close together).
  // Whole files go one at a time: their contexts have different numbers of blocks.
  std::vector<std::pair<size_t, size_t>> batches(const std::vector<int64_t>& lengths) const override {
    return length_batches(std::vector<int64_t>(lengths.size(), 1), std::numeric_limits<int64_t>::max(),
                          options_.whole_file ? 1 : options_.batch_size);
  }

  void run(const std::vector<std::pair<Doc*, int64_t>>& spans, JobSummary& summary) override {
    std::vector<at::Tensor> rows;
    for (const auto& [doc, span] : spans)  // [N, H], or the whole file's [k N, H]
      rows.push_back(options_.whole_file ? doc->file.latents.flatten(0, 1) : doc->file.latents[span]);
    GenerateOptions generate = options_.generate;
    generate.stop = options_.files.stop;
    const auto generated = codec_.generate(at::stack(rows), generate);
    for (size_t k = 0; k < spans.size(); ++k) {
      auto [doc, span] = spans[k];
      std::string& text = doc->texts[span];
      text = decode_reconstruction(codec_.tokenizer(), generated[k]);
      const auto length = static_cast<int64_t>(generated[k].size());
      summary.generated_tokens += length;
      if (doc->up_to_date) continue;  // computed only for a shared batch
      if (text.empty() && files_with_empty_spans_.insert(doc->job->name).second)
        summary.files_with_empty_spans.push_back(doc->job->name);
      summary.empty_spans += text.empty();
      summary.spans_at_limit += length >= options_.generate.max_new_tokens;
    }
  }

  void write(Doc& doc) override {
    write_text(*doc.job, options_.whole_file ? doc.texts[0] : join_spans(doc.texts, doc.file.span_joiners), doc.key);
  }

  bool written_by_c3(const fs::path& output) const override { return has_intact_record(output); }

  void count_written(const Doc& doc, JobSummary& summary) const override {
    summary.spans += doc.file.latents.size(0);
    summary.latent_tokens += doc.file.latents.size(0) * doc.file.latents.size(1);
    for (int64_t t : doc.file.span_tokens) summary.text_tokens += t;
  }

  int64_t progress_tokens(const JobSummary& summary) const override { return summary.generated_tokens; }

 private:
  C3Codec& codec_;
  const ReconstructOptions& options_;
  const std::string fingerprint_;
  const nlohmann::json settings_;
  std::set<std::string> files_with_empty_spans_;
};

}  // namespace

JobSummary reconstruct_files(C3Codec& codec, const std::vector<FileJob>& jobs, const ReconstructOptions& options) {
  ReconstructStep step(codec, options);
  return run_span_batch_job<Doc>(jobs, step, "reconstruct", options.files);
}

}  // namespace c3
