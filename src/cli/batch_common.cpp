#include "batch_common.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <map>
#include <set>

#include "c3/model/c3_io.h"
#include "c3/model/qwen2.h"
#include "c3/model/run_folder.h"
#include "c3/util/atomic_file.h"
#include "c3/util/error.h"
#include "c3/util/stop_signals.h"

namespace c3::cli {

C3Codec load_codec(const std::string& model, const std::string& dtype, const Runtime& runtime,
                   const std::string& instruction, const std::string& quantize) {
  if (model.empty()) throw UsageError("--model (a C3 checkpoint folder) is required");
  C3LoadOptions options;
  options.device = runtime.device;
  options.dtype = resolve_dtype(dtype, runtime.device);
  options.quantize = quantize;
  return C3Codec::load(model, options, instruction);
}

namespace {

// A run killed by SIGKILL leaves the temporary of the output it was writing; the run that finishes
// the job removes it. Only temporaries of this shard's own outputs are touched.
void remove_stale_outputs(const std::vector<FileJob>& jobs) {
  std::map<std::filesystem::path, std::set<std::string>> outputs_by_folder;
  for (const auto& job : jobs) {
    if (job.to_stdout()) continue;
    outputs_by_folder[job.output.parent_path()].insert(job.output.filename().string());
    outputs_by_folder[job.output.parent_path()].insert(output_record_file(job.output).filename().string());
  }
  int64_t removed = 0;
  for (const auto& [folder, names] : outputs_by_folder)
    removed +=
        remove_stale_temporaries(folder, [&names = names](const std::string& name) { return names.count(name) > 0; });
  if (removed > 0) spdlog::info("removed {} temporary files left by an interrupted run", removed);
}

}  // namespace

std::vector<FileJob> prepare_jobs(const BatchSettings& batch, const std::vector<std::string>& inputs, ListOptions list,
                                  const WrittenByC3& written_by_c3, bool force) {
  list.output = batch.output;
  const auto all = list_file_jobs(inputs, list);
  const Shard shard = Shard::parse(batch.shard);
  auto jobs = take_shard(all, shard);
  if (shard.count > 1) {
    // Taken from RANK/WORLD_SIZE or SLURM's variables, a shard is easy to get without meaning to.
    const std::string line =
        fmt::format("shard {}/{}: {} of {} files", shard.index, shard.count, jobs.size(), all.size());
    if (shard.from != "--shard")
      spdlog::warn("{} (from {}: the other files are left to the other processes; pass --shard 0/1 for all of them)",
                   line, shard.from);
    else
      spdlog::info("{}", line);
  }
  check_output_locations(jobs);
  if (!batch.summary.empty()) {
    if (std::filesystem::is_directory(batch.summary))
      fail_file(batch.summary, "is a folder (--summary takes a file name)");
    make_folder(std::filesystem::path(batch.summary).parent_path());
  }
  std::vector<std::filesystem::path> outputs;
  for (const auto& job : jobs)
    if (!job.to_stdout()) outputs.push_back(job.output);
  claim_outputs(outputs, written_by_c3, force);
  remove_stale_outputs(jobs);
  return jobs;
}

namespace {

std::string files(int64_t n) { return std::to_string(n) + (n == 1 ? " file" : " files"); }

// One line that reads at a glance: what was written, kept, failed, left; then the totals.
std::string closing_line(const JobSummary& s, const std::string& verb) {
  const int64_t failed = static_cast<int64_t>(s.failed.size()), not_done = s.not_done();
  const std::string done = verb == "compress" ? "compressed" : verb + "ed";
  if (s.files == 0) return "nothing to " + verb + ": no files in this shard";
  if (s.written == 0 && failed == 0 && not_done == 0)
    return "nothing to " + verb + ": " + (s.skipped == 1 ? "the file is" : "all " + files(s.skipped) + " are") +
           " up to date (made from the same input, model and settings)";
  std::string line = done + " " + files(s.written);
  std::vector<std::string> notes;
  if (s.redone > 0) notes.push_back(std::to_string(s.redone) + " of them redone: out of date or --force");
  if (s.replaced_foreign > 0)
    notes.push_back(std::to_string(s.replaced_foreign) + " replacing files c3 had not written (--force)");
  for (size_t i = 0; i < notes.size(); ++i) line += (i == 0 ? " (" : "; ") + notes[i];
  if (!notes.empty()) line += ")";
  if (s.skipped > 0) line += ", " + std::to_string(s.skipped) + " already up to date";
  if (failed > 0) line += ", " + std::to_string(failed) + " failed";
  if (not_done > 0) line += ", " + std::to_string(not_done) + " not done";
  line += fmt::format(" in {:.1f} s", s.seconds);
  if (s.spans > 0)
    line += fmt::format(": {} spans, {} text tokens", s.spans, s.text_tokens) +
            (s.latent_tokens > 0
                 ? fmt::format(", {:.1f}x compression", static_cast<double>(s.text_tokens) / s.latent_tokens)
                 : std::string());
  return line;
}

std::vector<std::string> sorted(std::vector<std::string> names) {
  std::sort(names.begin(), names.end());
  return names;
}

std::string some_of(const std::vector<std::string>& names, size_t most = 5) {
  std::string out;
  for (size_t i = 0; i < names.size() && i < most; ++i) out += (i ? ", " : "") + names[i];
  return names.size() > most ? out + ", ..." : out;
}

}  // namespace

int finish(const BatchSettings& batch, const JobSummary& summary, const std::string& verb) {
  if (!batch.summary.empty()) write_file_atomically(batch.summary, summary.to_json().dump(2) + "\n");
  spdlog::info("{}", closing_line(summary, verb));
  if (summary.empty_spans > 0)
    spdlog::warn("{} of {} spans came back empty, in {}{}", summary.empty_spans, summary.spans,
                 some_of(sorted(summary.files_with_empty_spans)),
                 summary.empty_spans == summary.spans
                     ? ": this model does not reconstruct (untrained, or another prompt?)"
                     : "");
  if (summary.spans_at_limit > 0)
    spdlog::warn("{} of {} spans stopped at --max-new-tokens, not at <|im_end|>: their text may be cut short{}",
                 summary.spans_at_limit, summary.spans,
                 summary.spans_at_limit == summary.spans
                     ? " (all of them: raise --max-new-tokens, or the model never stops)"
                     : "");
  std::vector<std::string> names;
  for (const auto& [file, error] : summary.failed) names.push_back(file);
  if (!names.empty()) spdlog::error("{} of {} failed: {}", names.size(), files(summary.files), some_of(names));
  if (summary.interrupted_by != 0) {
    spdlog::warn("interrupted by {}: the {} finished are kept{}; rerun the same command to {} the other {}",
                 Interrupted::signal_name(summary.interrupted_by), files(summary.written + summary.skipped),
                 batch.summary.empty() ? "" : " (summary in " + batch.summary + ")", verb, summary.not_done());
    return 128 + summary.interrupted_by;
  }
  return names.empty() ? 0 : 1;
}

}  // namespace c3::cli
