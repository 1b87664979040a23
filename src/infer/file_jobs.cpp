#include "c3/infer/file_jobs.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstdlib>
#include <set>

#include "c3/util/atomic_file.h"
#include "c3/util/error.h"
#include "c3/util/file_selection.h"
#include "c3/util/sha256.h"
#include "c3/util/stop_signals.h"
#include "util/launcher.h"

#include <fmt/format.h>

namespace fs = std::filesystem;

namespace c3 {
namespace {

// Outputs must never overwrite an input, nor land where a rerun would read them back as inputs.
void refuse_outputs_among_inputs(const std::vector<FileJob>& jobs, const std::vector<std::string>& inputs,
                                 const ListOptions& o) {
  std::error_code ec;
  std::vector<fs::path> sources, folders;
  for (const auto& job : jobs)
    if (!job.from_stdin()) sources.push_back(fs::weakly_canonical(job.source, ec));
  for (const auto& input : inputs)
    if (input != "-" && fs::is_directory(input, ec)) folders.push_back(fs::weakly_canonical(input, ec));
  std::sort(sources.begin(), sources.end());
  const FileSelection selection(o.include, o.exclude);
  for (const auto& job : jobs) {
    if (job.to_stdout()) continue;
    const fs::path out = fs::weakly_canonical(job.output, ec);
    if (std::binary_search(sources.begin(), sources.end(), out))
      throw UsageError(job.output.string() + ": the output would overwrite an input (choose another -o)");
    for (const auto& folder : folders) {
      const fs::path relative = out.lexically_relative(folder);
      if (relative.empty() || *relative.begin() == "..") continue;
      if (selection.takes(relative))
        throw UsageError(job.output.string() + ": the output would land inside the input folder " + folder.string() +
                         " and match --include there, so a rerun would read it back (choose another -o)");
    }
  }
}

fs::path with_suffix(fs::path path, const ListOptions& o) {
  std::string name = path.filename().string();
  if (!o.remove_suffix.empty() && name.size() > o.remove_suffix.size() &&
      name.compare(name.size() - o.remove_suffix.size(), o.remove_suffix.size(), o.remove_suffix) == 0)
    name.resize(name.size() - o.remove_suffix.size());
  return path.replace_filename(name + o.add_suffix);
}

std::string joined(const std::vector<std::string>& items, size_t most = 8) {
  std::string out;
  for (size_t i = 0; i < items.size() && i < most; ++i) out += (i ? " " : "") + items[i];
  return items.size() > most ? out + " ..." : out;
}

// Globs the user gave that took or left out nothing are most likely mistyped: said, not silent.
void warn_unmatched(const FileSelection& selection, const ListOptions& o) {
  const auto unmatched = selection.unmatched(o.warn_unmatched_include, true);
  if (unmatched.empty()) return;
  std::string names;
  for (const auto& u : unmatched) names += (names.empty() ? "" : ", ") + u;
  spdlog::warn(
      "{} matched no file in the input folders (globs are matched below each folder, as in .gitignore: "
      "'*.txt' at any depth, 'sub' or 'sub/**' for a folder)",
      names);
}

}  // namespace

bool names_a_folder(const fs::path& output) {
  std::error_code ec;
  return !output.empty() && (!output.has_filename() || fs::is_directory(output, ec));
}

std::vector<FileJob> list_file_jobs(const std::vector<std::string>& inputs, const ListOptions& o) {
  if (inputs.empty()) throw UsageError("no inputs given");
  std::error_code ec;
  const bool output_is_dir = names_a_folder(o.output);
  FileSelection selection(o.include, o.exclude);
  bool any_folder = false;
  const bool single = inputs.size() == 1 && (inputs[0] == "-" || !fs::is_directory(inputs[0], ec));
  std::vector<FileJob> jobs;
  for (const std::string& input : inputs) {
    if (input == "-") {
      if (!single) throw UsageError("'-' (stdin) must be the only input");
      jobs.push_back({{}, output_is_dir ? o.output / ("stdin" + o.add_suffix) : o.output, "<stdin>"});
      continue;
    }
    const fs::path path(input);
    if (!fs::exists(path, ec)) fail_file(input, "no such file or folder");
    if (!fs::is_directory(path, ec)) {
      fs::path out;
      if (single && !output_is_dir)
        out = o.output;  // may be empty: stdout
      else if (o.output.empty())
        throw UsageError("several inputs need -o OUTDIR");
      else
        out = o.output / with_suffix(path.filename(), o);
      jobs.push_back({path, out, input});
      continue;
    }
    if (o.output.empty()) throw UsageError(input + ": a folder input needs -o OUTDIR");
    any_folder = true;
    const auto listing = selection.list(path);
    if (listing.taken.empty())
      throw UsageError(
          input + ": no files match " + selection.describe() +
          (listing.left_out.empty() ? " (the folder has no files)" : " (it has " + joined(listing.left_out, 4) + ")"));
    for (const auto& relative : listing.taken)
      jobs.push_back({path / relative, o.output / with_suffix(relative, o), (path / relative).string()});
  }
  if (any_folder) warn_unmatched(selection, o);
  refuse_outputs_among_inputs(jobs, inputs, o);
  return jobs;
}

void check_output_locations(const std::vector<FileJob>& jobs) {
  std::set<fs::path> folders;
  for (const auto& job : jobs)
    if (!job.to_stdout()) folders.insert(job.output.parent_path().empty() ? fs::path(".") : job.output.parent_path());
  for (const auto& folder : folders) check_writable_folder(folder);
}

Shard Shard::parse(const std::string& text) {
  Shard s;
  if (text.empty()) {  // one shard per launched process
    const LaunchRank launch = launch_rank_from_env();
    s.index = launch.rank, s.count = launch.world_size;
    s.from = launch.source == "torchrun" ? "RANK/WORLD_SIZE"
             : launch.source == "slurm"  ? "SLURM_PROCID/SLURM_NTASKS"
                                         : "";
    return s;
  }
  s.from = "--shard";
  const auto slash = text.find('/');
  try {
    size_t used = 0;
    if (slash == std::string::npos) throw std::invalid_argument("no slash");
    s.index = std::stoll(text.substr(0, slash), &used);
    if (used != slash) throw std::invalid_argument("index");
    s.count = std::stoll(text.substr(slash + 1), &used);
    if (used != text.size() - slash - 1) throw std::invalid_argument("count");
  } catch (const std::exception&) {
    throw UsageError("--shard '" + text + "': expected I/N, e.g. 0/4");
  }
  if (s.count <= 0 || s.index < 0 || s.index >= s.count) throw UsageError("--shard '" + text + "': need 0 <= I < N");
  return s;
}

std::vector<FileJob> take_shard(const std::vector<FileJob>& jobs, const Shard& shard) {
  std::vector<FileJob> out;
  for (size_t j = 0; j < jobs.size(); ++j)
    if (static_cast<int64_t>(j) % shard.count == shard.index) out.push_back(jobs[j]);
  return out;
}

std::string job_key(const nlohmann::json& parts) { return sha256_hex(parts.dump()); }

nlohmann::json JobSummary::to_json() const {
  nlohmann::json failures = nlohmann::json::array();
  for (const auto& [file, error] : failed) failures.push_back({{"file", file}, {"error", error}});
  nlohmann::json j = {{"files", files},
                      {"written", written},
                      {"skipped", skipped},
                      {"redone", redone},
                      {"replaced_foreign", replaced_foreign},
                      {"failed", failures},
                      {"spans", spans},
                      {"text_tokens", text_tokens},
                      {"latent_tokens", latent_tokens},
                      {"generated_tokens", generated_tokens},
                      {"empty_spans", empty_spans},
                      {"files_with_empty_spans", files_with_empty_spans},
                      {"spans_at_limit", spans_at_limit},
                      {"seconds", seconds}};
  // An interrupted run: which signal, and how many files it left for a rerun.
  if (interrupted_by != 0) {
    j["interrupted_by"] = Interrupted::signal_name(interrupted_by);
    j["not_done"] = not_done();
  }
  if (latent_tokens > 0) j["compression_ratio"] = static_cast<double>(text_tokens) / static_cast<double>(latent_tokens);
  return j;
}

}  // namespace c3
