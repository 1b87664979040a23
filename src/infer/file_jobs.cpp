#include "c3/infer/file_jobs.h"

#include <fnmatch.h>

#include <algorithm>
#include <cstdlib>

#include "c3/util/atomic_file.h"
#include "c3/util/error.h"
#include "util/launcher.h"
#include "c3/util/sha256.h"

#include <fmt/format.h>

namespace fs = std::filesystem;

namespace c3 {
namespace {

// Globs match case-insensitively: `*.txt` takes NOTES.TXT too.
bool matches(const std::string& pattern, const fs::path& relative) {
  const bool by_path = pattern.find('/') != std::string::npos;
  const std::string subject = by_path ? relative.generic_string() : relative.filename().string();
  return fnmatch(pattern.c_str(), subject.c_str(), FNM_CASEFOLD | (by_path ? FNM_PATHNAME : 0)) == 0;
}

bool selected(const ListOptions& o, const fs::path& relative) {
  bool keep = o.include.empty();
  for (const auto& g : o.include) keep = keep || matches(g, relative);
  for (const auto& g : o.exclude) keep = keep && !matches(g, relative);
  return keep;
}

std::string joined(const std::vector<std::string>& items, size_t most = 8) {
  std::string out;
  for (size_t i = 0; i < items.size() && i < most; ++i) out += (i ? " " : "") + items[i];
  return items.size() > most ? out + " ..." : out;
}

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
  for (const auto& job : jobs) {
    if (job.to_stdout()) continue;
    const fs::path out = fs::weakly_canonical(job.output, ec);
    if (std::binary_search(sources.begin(), sources.end(), out))
      throw UsageError(job.output.string() + ": the output would overwrite an input (choose another -o)");
    for (const auto& folder : folders) {
      const fs::path relative = out.lexically_relative(folder);
      if (relative.empty() || *relative.begin() == "..") continue;
      if (selected(o, relative))
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

}  // namespace

std::vector<FileJob> list_file_jobs(const std::vector<std::string>& inputs, const ListOptions& o) {
  if (inputs.empty()) throw UsageError("no inputs given");
  std::error_code ec;
  const bool output_is_dir = !o.output.empty() && fs::is_directory(o.output, ec);
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
      if (single && !output_is_dir) out = o.output;  // may be empty: stdout
      else if (o.output.empty()) throw UsageError("several inputs need -o OUTDIR");
      else out = o.output / with_suffix(path.filename(), o);
      jobs.push_back({path, out, input});
      continue;
    }
    if (o.output.empty()) throw UsageError(input + ": a folder input needs -o OUTDIR");
    std::vector<fs::path> found;
    std::vector<std::string> others;  // files the globs left out, for the message below
    for (auto it = fs::recursive_directory_iterator(path, ec); !ec && it != fs::recursive_directory_iterator();
         it.increment(ec)) {
      if (!it->is_regular_file()) continue;
      const fs::path relative = it->path().lexically_relative(path);
      if (selected(o, relative)) found.push_back(relative);
      else others.push_back(relative.string());
    }
    if (ec) fail_file(input, "cannot list the folder: " + ec.message());
    if (found.empty()) {
      std::sort(others.begin(), others.end());
      throw UsageError(input + ": no files match --include " + joined(o.include) +
                       (o.exclude.empty() ? "" : " --exclude " + joined(o.exclude)) +
                       (others.empty() ? " (the folder has no files)" : " (it has " + joined(others, 4) + ")"));
    }
    std::sort(found.begin(), found.end());
    for (const auto& relative : found)
      jobs.push_back({path / relative, o.output / with_suffix(relative, o), (path / relative).string()});
  }
  refuse_outputs_among_inputs(jobs, inputs, o);
  return jobs;
}

Shard Shard::parse(const std::string& text) {
  Shard s;
  if (text.empty()) {  // one shard per launched process
    const LaunchRank launch = launch_rank_from_env();
    s.index = launch.rank, s.count = launch.world_size;
    return s;
  }
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
  if (s.count <= 0 || s.index < 0 || s.index >= s.count)
    throw UsageError("--shard '" + text + "': need 0 <= I < N");
  return s;
}

std::vector<FileJob> take_shard(const std::vector<FileJob>& jobs, const Shard& shard) {
  std::vector<FileJob> out;
  for (size_t j = 0; j < jobs.size(); ++j)
    if (static_cast<int64_t>(j) % shard.count == shard.index) out.push_back(jobs[j]);
  return out;
}

std::vector<std::pair<size_t, size_t>> length_batches(const std::vector<int64_t>& sorted_lengths, int64_t budget,
                                                      int64_t max_rows) {
  std::vector<std::pair<size_t, size_t>> out;
  size_t i = 0;
  while (i < sorted_lengths.size()) {
    size_t j = i;
    int64_t longest = 0;
    while (j < sorted_lengths.size() && static_cast<int64_t>(j - i) < max_rows) {
      const int64_t grown = std::max(longest, sorted_lengths[j]);
      if (j > i && grown * static_cast<int64_t>(j - i + 1) > budget) break;
      longest = grown, ++j;
    }
    out.emplace_back(i, j);
    i = j;
  }
  return out;
}

std::string job_key(const nlohmann::json& parts) { return sha256_hex(parts.dump()); }

fs::path job_key_file(const fs::path& output) {
  return output.parent_path() / ("." + output.filename().string() + ".c3-job");
}

std::string recorded_job_key(const fs::path& output) {
  std::error_code ec;
  if (!fs::exists(output, ec) || !fs::exists(job_key_file(output), ec)) return "";
  try {
    return read_text_file(job_key_file(output));
  } catch (const Error&) {
    return "";
  }
}

void record_job_key(const fs::path& output, const std::string& key) { write_file_atomically(job_key_file(output), key); }

nlohmann::json JobSummary::to_json() const {
  nlohmann::json failures = nlohmann::json::array();
  for (const auto& [file, error] : failed) failures.push_back({{"file", file}, {"error", error}});
  nlohmann::json j = {{"files", files},     {"written", written},         {"skipped", skipped}, {"redone", redone},
                      {"failed", failures}, {"spans", spans},             {"text_tokens", text_tokens},
                      {"latent_tokens", latent_tokens}, {"generated_tokens", generated_tokens},
                      {"empty_spans", empty_spans}, {"spans_at_limit", spans_at_limit},
                      {"seconds", seconds}};
  if (latent_tokens > 0) j["compression_ratio"] = static_cast<double>(text_tokens) / static_cast<double>(latent_tokens);
  return j;
}

JobProgress::JobProgress(std::string verb, int64_t files, bool enabled, std::string unit)
    : status_(enabled), verb_(std::move(verb)), unit_(std::move(unit)), files_(files),
      start_(std::chrono::steady_clock::now()) {}

double JobProgress::seconds() const {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
}

void JobProgress::update(int64_t processed, int64_t tokens) {
  const double elapsed = std::max(1e-9, seconds());
  const double rate = static_cast<double>(processed) / elapsed;
  const double eta = processed > 0 ? static_cast<double>(files_ - processed) / rate : -1;  // unknown before the first
  status_.update(fmt::format("{} {}/{} {} | {:.2f} {}/s | {:.0f} tokens/s | ETA {}", verb_, processed, files_, unit_, rate,
                             unit_, static_cast<double>(tokens) / elapsed, format_duration(eta)));
}

}  // namespace c3
