// What `c3 compress` and `c3 reconstruct` share on the command line: loading the model, the
// batch-hygiene options, and reporting the run's summary.
#pragma once

#include <string>
#include <vector>

#include "c3/infer/file_jobs.h"
#include "c3/model/c3_model.h"
#include "c3/tokenizer/tokenizer.h"
#include "c3/util/config.h"
#include "command.h"

namespace c3::cli {

// Declares SECTION.{model,output,force,fail_fast,shard,summary,progress,dtype} and their flags.
void add_batch_options(CLI::App& app, Options& options, const std::string& section);

// The model in `SECTION.model` (a C3 folder, or a training run for its newest checkpoint) on the
// runtime's device, in SECTION.dtype (auto: bf16 on CUDA, fp32 on the CPU), with its tokenizer.
struct LoadedModel {
  C3Model model{nullptr};
  std::unique_ptr<Tokenizer> tokenizer;
  std::filesystem::path folder;  // the checkpoint it was read from
};
LoadedModel load_model_for(const Config& config, const std::string& section, const Runtime& runtime);

// The jobs of this shard.
std::vector<FileJob> shard_jobs(const Config& config, const std::string& section, const std::vector<std::string>& inputs,
                                ListOptions list);

// Logs the summary, writes SECTION.summary (JSON, atomically) when set; returns the exit code
// (1 when any file failed).
int finish(const Config& config, const std::string& section, const JobSummary& summary, const std::string& verb);

}  // namespace c3::cli
