// Batch compression of many documents into latent files (what `c3 compress` runs). Files stream
// through in windows: each window's spans are grouped by length into batches under a token budget.
// Batches depend only on the job list, never on which outputs already exist, so a run resumed
// after an interruption writes exactly what an uninterrupted run would.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "c3/infer/codec.h"
#include "c3/infer/file_jobs.h"
#include "c3/infer/latent_file.h"

namespace c3 {

struct CompressOptions {
  int64_t batch_tokens = 16384;       // padded encoder tokens per batch
  int64_t max_span_tokens = 0;        // longest span of text tokens (0: span_limit decides)
  int64_t max_length = 0;             // a window to fit spans in (0: span_limit decides)
  at::ScalarType dtype = at::kFloat;  // of the stored latents
  FileJobOptions files;
};

JobSummary compress_files(C3Codec& codec, const std::vector<FileJob>& jobs, const CompressOptions& options);

}  // namespace c3
