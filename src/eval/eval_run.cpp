#include "c3/eval/eval_run.h"

#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <map>

#include "c3/eval/report.h"
#include "c3/infer/codec.h"
#include "c3/infer/file_jobs.h"
#include "c3/infer/latent_file.h"
#include "c3/util/atomic_file.h"
#include "c3/util/dtype.h"
#include "c3/util/error.h"
#include "c3/util/output_record.h"
#include "c3/util/sha256.h"
#include "c3/util/stop_signals.h"
#include "c3/version.h"

namespace fs = std::filesystem;
using json = nlohmann::json;

namespace c3 {
namespace {

constexpr const char* kJournal = "pages.partial.jsonl";
constexpr const char* kOutputs[] = {"pages.jsonl",        "summary.json", "report.md", "precision_vs_ratio.svg",
                                    "position_curve.svg", kJournal};

// SHA-256 over every page's id and text: names the data whatever file format held it.
std::string pages_digest(const std::vector<EvalPage>& pages) {
  std::string all;
  for (const auto& p : pages) all += p.id + '\0' + p.text + '\0';
  return sha256_hex(all);
}

// The page results a killed run logged, one JSON line each after a header holding the run's key.
// Results are kept only when still up to date: made with the same model and settings (`key`) from
// a page that is still selected with the same text. The others are redone.
class Journal {
 public:
  Journal(const fs::path& path, const json& key, const std::vector<SelectedPage>& pages) : path_(path) {
    std::error_code ec;
    if (fs::exists(path, ec)) done_ = read_up_to_date(key, pages);
    if (!done_.empty())
      spdlog::info("resuming: {} page results from the interrupted run in {}", done_.size(), path.string());
    // Rewritten with what is kept (a cut-off last line is dropped), then appended to.
    std::string kept = json{{"resume_key", key}}.dump() + "\n";
    for (const auto& r : done_) kept += r.to_json().dump() + "\n";
    write_file_atomically(path, kept);
    file_ = std::fopen(path.c_str(), "a");
    if (!file_) fail_file(path.string(), "cannot open for appending");
  }
  ~Journal() {
    if (file_) std::fclose(file_);
  }
  Journal(const Journal&) = delete;
  Journal& operator=(const Journal&) = delete;

  const std::vector<PageResult>& done() const { return done_; }

  size_t pages() const { return done_.size() + appended_; }  // results it holds

  void append(const std::vector<PageResult>& batch) {
    appended_ += batch.size();
    std::string lines;
    for (const auto& r : batch) lines += r.to_json().dump() + "\n";
    if (std::fwrite(lines.data(), 1, lines.size(), file_) != lines.size() || std::fflush(file_) != 0)
      fail_file(path_.string(), std::string("write failed: ") + std::strerror(errno));
    ::fsync(fileno(file_));
  }

  void remove() {
    std::fclose(file_);
    file_ = nullptr;
    std::error_code ec;
    fs::remove(path_, ec);
  }

 private:
  std::vector<PageResult> read_all(json& header) const {
    std::ifstream in(path_);
    std::string line;
    if (!std::getline(in, line)) return {};
    try {
      header = json::parse(line);
    } catch (const json::exception&) {
      fail_file(path_.string(), "not a c3 eval journal (pass --force to start over)");
    }
    std::vector<PageResult> found;
    while (std::getline(in, line)) {
      try {
        found.push_back(PageResult::from_json(json::parse(line)));
      } catch (const json::exception&) {
        break;  // the line a kill cut short; what follows it cannot exist
      }
    }
    return found;
  }

  std::vector<PageResult> read_up_to_date(const json& key, const std::vector<SelectedPage>& pages) const {
    json header;
    std::vector<PageResult> found = read_all(header);
    if (header.value("resume_key", json()) != key) {
      if (!found.empty())
        spdlog::warn("{}: its {} page results were made with another model or settings: redoing them", path_.string(),
                     found.size());
      return {};
    }
    std::map<std::string, std::string> digests;
    for (const auto& p : pages) digests[p.page.id] = sha256_hex(p.page.text);
    std::vector<PageResult> done;
    for (auto& r : found) {
      const auto it = digests.find(r.id);
      if (it != digests.end() && it->second == r.page_sha256) done.push_back(std::move(r));
    }
    if (done.size() < found.size())
      spdlog::info("{}: {} page results are out of date (their page changed or left the selection): redoing them",
                   path_.string(), found.size() - done.size());
    return done;
  }

  fs::path path_;
  std::FILE* file_ = nullptr;
  std::vector<PageResult> done_;
  size_t appended_ = 0;
};

// A journal shows that c3 wrote it by its first line, the run's key.
bool is_eval_journal(const fs::path& path) {
  std::ifstream in(path);
  std::string line;
  if (!std::getline(in, line)) return false;
  try {
    const json header = json::parse(line);
    return header.is_object() && header.contains("resume_key");
  } catch (const json::exception&) {
    return false;
  }
}

// What eval writes into its folder, each with the test that shows c3 wrote it.
std::vector<fs::path> output_paths(const fs::path& out) {
  std::vector<fs::path> paths;
  for (const char* name : kOutputs) paths.push_back(out / name);
  return paths;
}

bool written_by_eval(const fs::path& path) {
  return path.filename() == kJournal ? is_eval_journal(path) : has_intact_record(path);
}

std::vector<SelectedPage> select(const std::vector<EvalPage>& pages, const Tokenizer& tokenizer,
                                 const EvalRunSettings& s, int64_t latent_tokens) {
  const Buckets& buckets = s.options.buckets;
  auto selected = select_pages(pages, tokenizer, buckets, s.limit);
  if (selected.empty())
    fail_file(s.data, "no page has " + std::to_string(buckets.min_tokens) + "-" + std::to_string(buckets.max_tokens) +
                          " text tokens with this model's tokenizer");
  spdlog::info("{}: {} of {} pages have {}-{} text tokens; {} condition(s), {} latent tokens", s.data, selected.size(),
               pages.size(), buckets.min_tokens, buckets.max_tokens, s.conditions.size(), latent_tokens);
  return selected;
}

// Pages longer than the model was trained on are cut into spans, as compress cuts documents.
// Returns how many pages are cut.
int64_t set_span_limit(EvalRunSettings& s, const C3Model& model, const C3Prompt& prompt,
                       const std::vector<SelectedPage>& selected) {
  if (s.max_span_tokens < 0) throw UsageError("--max-span-tokens must be >= 0");
  const SpanLimit limit = span_limit(model->config(), prompt, s.max_span_tokens, 0);
  s.options.span_tokens = limit.tokens;
  const auto cut =
      std::count_if(selected.begin(), selected.end(), [&](const SelectedPage& p) { return p.tokens > limit.tokens; });
  if (cut > 0)
    spdlog::info(
        "{} of {} pages have more than {} text tokens ({}): they are cut into spans of at most {} tokens, "
        "each compressed into {} latents, and their ratio counts all of them",
        cut, selected.size(), limit.tokens, limit.source, limit.tokens, prompt.latent_tokens());
  return cut;
}

// What the summary records of the run.
json run_record(const C3Codec& codec, const std::vector<EvalPage>& pages, const std::vector<SelectedPage>& selected,
                const EvalRunSettings& s, int64_t cut) {
  const EvalOptions& o = s.options;
  return {{"c3_version", C3_VERSION},
          {"model", codec.folder().string()},
          {"model_fingerprint", codec.fingerprint()},
          {"latent_tokens", codec.model()->config().latent_tokens},
          {"data", s.data},
          {"pages_sha256", pages_digest(pages)},  // the report's record of the data
          {"selection", {{"pages_read", pages.size()}, {"pages_selected", selected.size()}, {"limit", s.limit}}},
          {"generation",
           {{"max_new_tokens", o.generate.max_new_tokens},
            {"max_span_tokens", o.span_tokens},
            {"pages_cut_into_spans", cut},
            {"no_repeat_ngram", o.generate.no_repeat_ngram_size},
            {"batch_size", o.batch_size},
            {"dtype", scalar_type_name(codec.model()->dtype())},
            {"quantize", codec.quantize()},
            {"device", s.device}}},
          {"conditions_requested", s.conditions},
          {"seed", o.seed}};
}

// What a journal's results must have been made with to be kept: the run's record less what does
// not change a page's result (pages are checked one by one).
json resume_key(const json& run, const Buckets& buckets) {
  json key = run;
  for (const char* name :
       {"c3_version", "pages_sha256", "data", "selection", "foreign_files_replaced", "rejected_pages"})
    key.erase(name);
  key["generation"].erase("batch_size");
  key["generation"].erase("pages_cut_into_spans");
  key["buckets"] = {buckets.min_tokens, buckets.max_tokens, buckets.width};
  return key;
}

void prepare_output(const fs::path& out, bool force) {
  std::error_code ec;
  if (force)  // only what eval writes (checked by check_eval_output): the folder may hold other things
    for (const auto& path : output_paths(out)) fs::remove(path, ec);
  make_folder(out);
}

// Each output with its record (c3/util/output_record.h), so a rerun knows them for c3's.
void write_outputs(const fs::path& out, const std::vector<PageResult>& results, const json& summary,
                   const std::string& key) {
  std::string lines;
  for (const auto& r : results) lines += r.to_json().dump() + "\n";
  write_recorded_output(out / "pages.jsonl", lines, key);
  write_recorded_output(out / "precision_vs_ratio.svg", precision_plot_svg(summary, results), key);
  write_recorded_output(out / "position_curve.svg", position_plot_svg(summary), key);
  write_recorded_output(out / "report.md", report_markdown(summary), key);
  write_recorded_output(out / "summary.json", summary.dump(2) + "\n", key);  // last: its presence means finished
}

}  // namespace

void check_eval_folder(const fs::path& output, const std::vector<fs::path>& outputs, const WrittenByC3& written_by_c3,
                       bool force) {
  std::error_code ec;
  if (fs::exists(output, ec) && !fs::is_directory(output, ec)) fail_file(output.string(), "exists and is not a folder");
  if (!fs::exists(output, ec)) check_writable_folder(output);
  if (written_by_c3(output / "summary.json") && !force)
    fail_file(output.string(), "already holds a finished evaluation (pass --force to replace it)");
  claim_outputs(outputs, written_by_c3, force);
}

void check_eval_output(const fs::path& output, bool force) {
  check_eval_folder(output, output_paths(output), written_by_eval, force);
}

json run_evaluation(C3Codec& codec, const std::vector<EvalPage>& pages, EvalRunSettings s) {
  const C3Prompt& prompt = codec.prompt();
  const auto selected = select(pages, codec.tokenizer(), s, prompt.latent_tokens());
  const int64_t cut = set_span_limit(s, codec.model(), prompt, selected);
  json run = run_record(codec, pages, selected, s, cut);
  // Checked again (check_eval_output ran before the model loaded): files may have appeared since.
  const auto foreign = foreign_files(output_paths(s.output), written_by_eval);
  if (!foreign.empty() && !s.force) throw Error(foreign_file_message(foreign.front(), foreign.size()));
  run["foreign_files_replaced"] = foreign.size();
  json rejected = json::array();
  for (const auto& [where, why] : s.rejected) rejected.push_back({{"page", where}, {"error", why}});
  run["rejected_pages"] = rejected;
  prepare_output(s.output, s.force);
  const json key = resume_key(run, s.options.buckets);
  Journal journal(s.output / kJournal, key, selected);

  const auto start = std::chrono::steady_clock::now();
  std::vector<PageResult> results;
  try {
    results = evaluate(codec, selected, s.options, journal.done(),
                       [&](const std::vector<PageResult>& batch) { journal.append(batch); });
  } catch (const Interrupted& stop) {
    spdlog::warn("interrupted by {}: {} of {} page results are kept in {}; rerun the same command to resume",
                 Interrupted::signal_name(stop.signal()), journal.pages(), selected.size() * s.conditions.size(),
                 (s.output / kJournal).string());
    throw;
  }
  int64_t generated = 0;
  for (const auto& r : results) generated += r.generated_tokens;
  run["seconds"] = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  run["generated_tokens"] = generated;
  run["resumed_pages"] = journal.done().size();
  const json summary = summarize(results, s.options.buckets, s.conditions, run);
  write_outputs(s.output, results, summary, job_key(key));
  journal.remove();
  return summary;
}

}  // namespace c3
