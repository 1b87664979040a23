// Batch reconstruction of latent files into text (what `c3 reconstruct` runs): spans of many
// files decoded together in batches, each sequence stopping on its own; a file's spans are joined
// in order. With whole_file, each file's spans are instead one context that the decoder answers
// once (continuation, a question). Like compression, batches depend only on the job list, so resumed runs write exactly
// what an uninterrupted run would.
#pragma once

#include "c3/infer/codec.h"
#include "c3/infer/file_jobs.h"
#include "c3/infer/generate.h"

namespace c3 {

struct ReconstructOptions {
  GenerateOptions generate;
  int64_t batch_size = 16;  // sequences decoded together
  // Each file's spans as one context (k blocks of latents in the prompt, one generation per file),
  // for an instruction about the whole text (--prompt, --task continue); else span by span, joined.
  bool whole_file = false;
  FileJobOptions files;
};

JobSummary reconstruct_files(C3Codec& codec, const std::vector<FileJob>& jobs, const ReconstructOptions& options);

}  // namespace c3
