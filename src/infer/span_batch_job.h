// The loop `c3 compress` and `c3 reconstruct` share. Files are taken in windows of
// `window_files`; each file opens into spans; the window's spans, shortest first (then in list
// order, so batches are a function of the list), run in batches; a file's output is written as soon
// as its last span is done, or skipped when an earlier run's output is up to date (its spans run
// only when they share a batch with one that is not). A file that fails is reported and skipped
// (or stops the job with fail_fast); a UsageError stops it at once. An output is written only over
// nothing, over a file the step shows c3 wrote, or with force. A stop signal ends the job before
// the next batch (or inside decoding): the files finished so far stay, and the summary says so.
#pragma once

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <string>
#include <utility>
#include <vector>

#include <torch/torch.h>

#include "c3/infer/codec.h"
#include "c3/infer/file_jobs.h"
#include "c3/util/error.h"
#include "c3/util/output_record.h"
#include "c3/util/stop_signals.h"

namespace c3 {

// What the loop keeps of each file; a job's own document type derives from it.
struct JobDoc {
  const FileJob* job = nullptr;
  int64_t pending = 0;      // spans not yet run
  std::string key;          // the job key its output records (file_jobs.h)
  bool up_to_date = false;  // an earlier run's output has this run's job key
  bool redo = false;        // an earlier run's output is out of date (or --force)
};

// The steps that differ between compress and reconstruct. Doc derives from JobDoc.
template <typename Doc>
class SpanBatchJob {
 public:
  virtual ~SpanBatchJob() = default;
  // Reads doc.job's input: its spans, key, up_to_date and redo. Returns its span count;
  // throws c3::Error when the file cannot be processed.
  virtual int64_t open(Doc& doc) = 0;
  virtual int64_t span_length(const Doc& doc, int64_t span) const = 0;  // the order within a window
  // Batches [begin, end) over the window's span lengths, sorted ascending.
  virtual std::vector<std::pair<size_t, size_t>> batches(const std::vector<int64_t>& lengths) const = 0;
  virtual void run(const std::vector<std::pair<Doc*, int64_t>>& spans, JobSummary& summary) = 0;
  virtual void write(Doc& doc) = 0;  // throws c3::Error when the output cannot be written
  // Whether the file at `output` shows that c3 wrote it (a latent file, a reconstruction's record).
  virtual bool written_by_c3(const std::filesystem::path& output) const = 0;
  virtual void count_written(const Doc& doc, JobSummary& summary) const = 0;
  virtual int64_t progress_tokens(const JobSummary& summary) const = 0;  // the status line's tokens
};

namespace span_batch_detail {

// The error names the file; prefixed with it when it does not already.
inline std::string message_for(const FileJob& job, const Error& e) {
  const std::string what = e.what();
  return what.rfind(job.name + ":", 0) == 0 ? what : job.name + ": " + what;
}

// Whether writing `job`'s output replaces a file c3 did not write (checked again at the moment of
// writing: the file may have appeared since the job started). Without force that is an error.
template <typename Doc>
bool replaces_foreign_file(const FileJob& job, const SpanBatchJob<Doc>& step, bool force) {
  std::error_code ec;
  if (job.to_stdout() || !std::filesystem::exists(job.output, ec) || step.written_by_c3(job.output)) return false;
  if (!force) throw Error(foreign_file_message(job.output, 1));
  return true;
}

}  // namespace span_batch_detail

// `verb` ("compress", "reconstruct") names the work on the status line.
template <typename Doc>
JobSummary run_span_batch_job(const std::vector<FileJob>& jobs, SpanBatchJob<Doc>& step, const std::string& verb,
                              const FileJobOptions& o) {
  torch::NoGradGuard no_grad;
  JobSummary summary;
  summary.files = static_cast<int64_t>(jobs.size());
  JobProgress status(verb, summary.files, o.progress);
  auto fail = [&](const FileJob& job, const Error& e) {
    const std::string message = span_batch_detail::message_for(job, e);
    status.clear();
    spdlog::error("{}", message);
    summary.failed.emplace_back(job.name, message);
    if (o.fail_fast) throw Error(message + " (stopping: --fail-fast)");
  };
  int64_t processed = 0;
  const auto window = static_cast<size_t>(std::max<int64_t>(1, o.window_files));
  try {
    for (size_t w = 0; w < jobs.size(); w += window) {
      std::vector<Doc> docs;
      for (size_t j = w; j < std::min(jobs.size(), w + window); ++j) {
        Doc doc;
        doc.job = &jobs[j];
        try {
          doc.pending = step.open(doc);
        } catch (const UsageError&) {
          throw;
        } catch (const Error& e) {
          fail(jobs[j], e);
          continue;
        }
        docs.push_back(std::move(doc));
      }
      std::vector<size_t> counts;
      for (const Doc& doc : docs) counts.push_back(static_cast<size_t>(doc.pending));
      const SpanOrder order =
          order_spans(counts, [&](size_t d, size_t s) { return step.span_length(docs[d], static_cast<int64_t>(s)); });
      for (const auto& [begin, end] : step.batches(order.lengths)) {
        throw_if_stopped(o.stop);
        std::vector<std::pair<Doc*, int64_t>> batch;
        bool needed = false;
        for (size_t k = begin; k < end; ++k) {
          const auto [d, s] = order.spans[k];
          batch.emplace_back(&docs[d], static_cast<int64_t>(s));
          needed = needed || !docs[d].up_to_date;
        }
        if (needed) step.run(batch, summary);
        for (auto& [doc, span] : batch) {
          if (--doc->pending > 0) continue;
          ++processed;
          if (doc->up_to_date) {
            ++summary.skipped;
            continue;
          }
          bool foreign = false;
          try {
            foreign = span_batch_detail::replaces_foreign_file(*doc->job, step, o.force);
            step.write(*doc);
          } catch (const UsageError&) {
            throw;
          } catch (const Error& e) {
            fail(*doc->job, e);
            continue;
          }
          ++summary.written;
          summary.replaced_foreign += foreign;
          if (doc->redo && !foreign) ++summary.redone;
          step.count_written(*doc, summary);
        }
        status.update(processed, step.progress_tokens(summary));
      }
    }
  } catch (const Interrupted& stop) {
    summary.interrupted_by = stop.signal();
  }
  status.clear();
  summary.seconds = status.seconds();
  return summary;
}

}  // namespace c3
