#include "c3/eval/eval_run.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <map>

#include "c3/eval/report.h"
#include "c3/eval/result_journal.h"
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

// A journaled page result is current when its page is still selected with the same text.
ResultJournal::StillCurrent page_unchanged(const std::vector<SelectedPage>& pages) {
  std::map<std::string, std::string> digests;
  for (const auto& p : pages) digests[p.page.id] = sha256_hex(p.page.text);
  return ResultJournal::input_unchanged(std::move(digests), "id", "page_sha256");
}

// What eval writes into its folder, each with the test that shows c3 wrote it.
std::vector<fs::path> output_paths(const fs::path& out) {
  std::vector<fs::path> paths;
  for (const char* name : kOutputs) paths.push_back(out / name);
  return paths;
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

// Each output with its record (c3/util/output_record.h), so a rerun knows them for c3's.
void write_outputs(const fs::path& out, const std::vector<PageResult>& results, const json& summary,
                   const std::string& key) {
  make_folder(out);
  std::string lines;
  for (const auto& r : results) lines += r.to_json().dump() + "\n";
  write_recorded_output(out / "pages.jsonl", lines, key);
  write_recorded_output(out / "precision_vs_ratio.svg", precision_plot_svg(summary, results), key);
  write_recorded_output(out / "position_curve.svg", position_plot_svg(summary), key);
  write_recorded_output(out / "report.md", report_markdown(summary), key);
  write_recorded_output(out / "summary.json", summary.dump(2) + "\n", key);  // last: its presence means finished
}

}  // namespace

bool written_by_eval(const fs::path& path) {
  const std::string name = path.filename().string();
  const std::string journal = ".partial.jsonl";
  const bool is_journal =
      name.size() > journal.size() && name.compare(name.size() - journal.size(), journal.size(), journal) == 0;
  return is_journal ? ResultJournal::written_by_c3(path) : has_intact_record(path);
}

size_t prepare_eval_outputs(const std::vector<fs::path>& outputs, bool force) {
  // Warned of (or refused) by check_eval_folder before the model loaded; refused here if new.
  const auto foreign = foreign_files(outputs, written_by_eval);
  if (!foreign.empty() && !force) throw Error(foreign_file_message(foreign.front(), foreign.size()));
  std::error_code ec;
  if (force)  // only what eval writes: the folder may hold other things
    for (const auto& path : outputs) fs::remove(path, ec);
  return foreign.size();
}

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
  json rejected = json::array();
  for (const auto& [where, why] : s.rejected) rejected.push_back({{"page", where}, {"error", why}});
  run["rejected_pages"] = rejected;
  // Checked again (check_eval_output ran before the model loaded): files may have appeared since.
  run["foreign_files_replaced"] = prepare_eval_outputs(output_paths(s.output), s.force);
  const json key = resume_key(run, s.options.buckets);
  ResultJournal journal(s.output / kJournal, key, page_unchanged(selected), "page results");
  std::vector<PageResult> done;
  for (const auto& r : journal.done()) done.push_back(PageResult::from_json(r));

  const auto start = std::chrono::steady_clock::now();
  std::vector<PageResult> results;
  try {
    results = evaluate(codec, selected, s.options, done, [&](const std::vector<PageResult>& batch) {
      std::vector<json> lines;
      for (const auto& r : batch) lines.push_back(r.to_json());
      journal.append(lines);
    });
  } catch (const Interrupted& stop) {
    spdlog::warn("interrupted by {}: {} of {} page results are kept in {}; rerun the same command to resume",
                 Interrupted::signal_name(stop.signal()), journal.results(), selected.size() * s.conditions.size(),
                 (s.output / kJournal).string());
    throw;
  }
  int64_t generated = 0;
  for (const auto& r : results) generated += r.generated_tokens;
  run["seconds"] = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  run["generated_tokens"] = generated;
  run["resumed_pages"] = done.size();
  const json summary = summarize(results, s.options.buckets, s.conditions, run);
  write_outputs(s.output, results, summary, job_key(key));
  journal.remove();
  return summary;
}

}  // namespace c3
