#include "c3/infer/reconstructor.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstdio>
#include <iostream>
#include <iterator>
#include <limits>

#include "c3/infer/latent_file.h"
#include "c3/model/qwen2.h"
#include "c3/util/sha256.h"
#include "c3/util/atomic_file.h"
#include "c3/util/error.h"

namespace fs = std::filesystem;

namespace c3 {
namespace {

struct Doc {
  const FileJob* job;
  LatentFile file;
  std::vector<std::string> texts;  // per span
  int64_t pending = 0;
  std::string key;          // its job key (file_jobs.h)
  bool up_to_date = false;  // an earlier run's output with this key
  bool redo = false;        // an earlier run's output that is out of date (or --force)
};

// The job's latent file (from stdin for "-"), checked to come from this model; sets `bytes` to its
// bytes (for the job key). Errors name the file.
LatentFile read_checked(const FileJob& job, const std::string& fingerprint, C3Model& model, std::string& bytes) {
  bytes = job.from_stdin() ? std::string(std::istreambuf_iterator<char>(std::cin), {}) : read_text_file(job.source);
  LatentFile file = read_latent_bytes(bytes, job.name);
  const int64_t n = model->config().latent_tokens, hidden = model->config().decoder.hidden_size;
  if (file.model_fingerprint != fingerprint || file.latents.size(1) != n || file.latents.size(2) != hidden)
    fail_file(job.name, "made by another model (fingerprint " + file.model_fingerprint.substr(0, 12) + ", " +
                            std::to_string(file.latents.size(1)) + " x " + std::to_string(file.latents.size(2)) +
                            " latents, c3 " + file.c3_version + ", from " + file.source_path + "), not by this one (" +
                            fingerprint.substr(0, 12) + ", " + std::to_string(n) + " x " + std::to_string(hidden) + ")");
  return file;
}

std::string joined_text(const Doc& doc) {
  std::string out;
  for (size_t s = 0; s < doc.texts.size(); ++s) out += doc.texts[s] + doc.file.span_joiners[s];
  return out;
}

}  // namespace

JobSummary reconstruct_files(C3Model& model, const Tokenizer& tokenizer, const C3Prompt& prompt,
                             const std::vector<FileJob>& jobs, const ReconstructOptions& options) {
  torch::NoGradGuard no_grad;
  const auto device = model->query.device();
  const std::string fingerprint = model_fingerprint(model);
  // What makes an output's bytes besides its latent file: the model (and the dtype it runs in), the
  // prompt, the generation settings.
  const nlohmann::json settings = {{"model", fingerprint},
                                   {"dtype", scalar_type_name(model->decoder->model->norm->weight.scalar_type())},
                                   {"prompt", prompt.decoder_prompt()},
                                   {"max_new_tokens", options.generate.max_new_tokens},
                                   {"no_repeat_ngram_size", options.generate.no_repeat_ngram_size}};
  JobSummary summary;
  summary.files = static_cast<int64_t>(jobs.size());
  JobProgress status("reconstruct", summary.files, options.progress);
  int64_t processed = 0;
  // `message` names the file already.
  auto fail = [&](const std::string& name, const std::string& message) {
    status.clear();
    spdlog::error("{}", message);
    summary.failed.emplace_back(name, message);
    if (options.fail_fast) throw Error(message + " (stopping: --fail-fast)");
  };

  for (size_t w = 0; w < jobs.size(); w += static_cast<size_t>(options.window_files)) {
    std::vector<Doc> docs;
    for (size_t j = w; j < std::min(jobs.size(), w + static_cast<size_t>(options.window_files)); ++j) {
      Doc doc{&jobs[j], {}, {}, 0, {}, false, false};
      try {
        std::string bytes;
        doc.file = read_checked(jobs[j], fingerprint, model, bytes);
        nlohmann::json parts = settings;
        parts["latents_sha256"] = sha256_hex(bytes);
        doc.key = job_key(parts);
        if (!jobs[j].to_stdout()) {
          std::error_code ec;
          doc.up_to_date = !options.force && recorded_job_key(jobs[j].output) == doc.key;
          doc.redo = !doc.up_to_date && fs::exists(jobs[j].output, ec);
        }
      } catch (const UsageError&) {
        throw;
      } catch (const Error& e) {
        fail(jobs[j].name, e.what());
        continue;
      }
      doc.pending = doc.file.latents.size(0);
      doc.texts.resize(doc.pending);
      docs.push_back(std::move(doc));
    }
    std::vector<std::pair<size_t, int64_t>> order;  // (doc, span), by expected length
    for (size_t d = 0; d < docs.size(); ++d)
      for (int64_t s = 0; s < docs[d].pending; ++s) order.emplace_back(d, s);
    std::stable_sort(order.begin(), order.end(), [&](const auto& x, const auto& y) {
      return docs[x.first].file.span_tokens[x.second] < docs[y.first].file.span_tokens[y.second];
    });
    std::vector<int64_t> lengths(order.size(), 1);
    for (const auto& [i, j] : length_batches(lengths, std::numeric_limits<int64_t>::max(), options.batch_size)) {
      bool needed = false;
      for (size_t k = i; k < j; ++k) needed = needed || !docs[order[k].first].up_to_date;
      if (needed) {
        std::vector<at::Tensor> rows;
        for (size_t k = i; k < j; ++k) rows.push_back(docs[order[k].first].file.latents[order[k].second]);
        const at::Tensor latents = at::stack(rows).to(device, model->decoder->model->norm->weight.scalar_type());
        const auto generated = greedy_generate(model, prompt, latents, options.generate);
        for (size_t k = i; k < j; ++k) {
          std::string& text = docs[order[k].first].texts[order[k].second];
          text = decode_reconstruction(tokenizer, generated[k - i]);
          const auto length = static_cast<int64_t>(generated[k - i].size());
          summary.generated_tokens += length;
          if (docs[order[k].first].up_to_date) continue;  // computed only for a shared batch
          summary.empty_spans += text.empty();
          summary.spans_at_limit += length >= options.generate.max_new_tokens;
        }
      }
      for (size_t k = i; k < j; ++k) {
        Doc& doc = docs[order[k].first];
        if (--doc.pending > 0) continue;
        ++processed;
        if (doc.up_to_date) {
          ++summary.skipped;
          continue;
        }
        const std::string text = joined_text(doc);
        try {
          if (doc.job->to_stdout()) {
            std::fwrite(text.data(), 1, text.size(), stdout);
            if (text.empty() || text.back() != '\n') std::fputc('\n', stdout);
            std::fflush(stdout);
          } else {
            std::error_code ec;
            if (doc.job->output.has_parent_path()) fs::create_directories(doc.job->output.parent_path(), ec);
            write_file_atomically(doc.job->output, text);
            record_job_key(doc.job->output, doc.key);
          }
        } catch (const Error& e) {
          fail(doc.job->name, doc.job->name + ": " + e.what());
          continue;
        }
        ++summary.written;
        if (doc.redo) ++summary.redone;
        summary.spans += doc.file.latents.size(0);
        summary.latent_tokens += doc.file.latents.size(0) * doc.file.latents.size(1);
        for (int64_t t : doc.file.span_tokens) summary.text_tokens += t;
      }
      status.update(processed, summary.generated_tokens);
    }
  }
  status.clear();
  summary.seconds = status.seconds();
  return summary;
}

}  // namespace c3
