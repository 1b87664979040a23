#include "batch_common.h"

#include <spdlog/spdlog.h>

#include <map>
#include <set>

#include "c3/model/c3_io.h"
#include "c3/model/qwen2.h"
#include "c3/train/checkpoints.h"
#include "c3/util/atomic_file.h"
#include "c3/util/error.h"

namespace c3::cli {

LoadedModel load_model_for(const std::string& model, const std::string& dtype, const Runtime& runtime) {
  if (model.empty()) throw UsageError("--model (a C3 checkpoint folder) is required");
  C3LoadOptions options;
  options.device = runtime.device;
  options.dtype = resolve_dtype(dtype, runtime.device);
  LoadedModel loaded;
  loaded.folder = resolve_c3_checkpoint(model);
  loaded.model = load_c3(loaded.folder, options);
  loaded.model->eval();
  loaded.tokenizer = load_tokenizer(loaded.folder);
  return loaded;
}

namespace {

// A run killed by SIGKILL leaves the temporary of the output it was writing; the run that finishes
// the job removes it. Only temporaries of this shard's own outputs are touched.
void remove_stale_outputs(const std::vector<FileJob>& jobs) {
  std::map<std::filesystem::path, std::set<std::string>> outputs_by_folder;
  for (const auto& job : jobs) {
    if (job.to_stdout()) continue;
    outputs_by_folder[job.output.parent_path()].insert(job.output.filename().string());
    outputs_by_folder[job.output.parent_path()].insert(job_key_file(job.output).filename().string());
  }
  int64_t removed = 0;
  for (const auto& [folder, names] : outputs_by_folder)
    removed += remove_stale_temporaries(folder, [&names = names](const std::string& name) { return names.count(name) > 0; });
  if (removed > 0) spdlog::info("removed {} temporary files left by an interrupted run", removed);
}

}  // namespace

std::vector<FileJob> shard_jobs(const BatchSettings& batch, const std::vector<std::string>& inputs, ListOptions list) {
  list.output = batch.output;
  const auto all = list_file_jobs(inputs, list);
  const Shard shard = Shard::parse(batch.shard);
  auto jobs = take_shard(all, shard);
  if (shard.count > 1) spdlog::info("shard {}/{}: {} of {} files", shard.index, shard.count, jobs.size(), all.size());
  remove_stale_outputs(jobs);
  return jobs;
}

int finish(const BatchSettings& batch, const JobSummary& summary, const std::string& verb) {
  if (!batch.summary.empty()) write_file_atomically(batch.summary, summary.to_json().dump(2) + "\n");
  spdlog::info("{} {} files ({} of them redone: out of date or --force; {} up to date, kept; {} failed) in {:.1f} s: "
               "{} spans, {} text tokens{}",
               verb, summary.written, summary.redone, summary.skipped, summary.failed.size(), summary.seconds,
               summary.spans, summary.text_tokens,
               summary.latent_tokens > 0
                   ? fmt::format(", {:.1f}x compression", static_cast<double>(summary.text_tokens) / summary.latent_tokens)
                   : std::string());
  if (summary.empty_spans > 0)
    spdlog::warn("{} of {} spans came back empty{}", summary.empty_spans, summary.spans,
                 summary.empty_spans == summary.spans ? ": this model does not reconstruct (untrained, or another prompt?)" : "");
  if (summary.spans_at_limit > 0)
    spdlog::warn("{} of {} spans stopped at --max-new-tokens, not at <|im_end|>: their text may be cut short{}",
                 summary.spans_at_limit, summary.spans,
                 summary.spans_at_limit == summary.spans ? " (all of them: raise --max-new-tokens, or the model never stops)" : "");
  if (summary.failed.empty()) return 0;
  std::string names;
  for (size_t i = 0; i < summary.failed.size() && i < 5; ++i) names += (i ? ", " : "") + summary.failed[i].first;
  spdlog::error("{} of {} files failed: {}{}", summary.failed.size(), summary.files, names,
                summary.failed.size() > 5 ? ", ..." : "");
  return 1;
}

}  // namespace c3::cli
