// c3 eval --model DIR DATA -o OUT: the Fox protocol (pages by token count, compress +
// reconstruct, score) and its report. c3 eval --score FILE: the scorer alone, on any predictions.
#include <spdlog/spdlog.h>

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>

#include "batch_common.h"
#include "c3/eval/eval_data.h"
#include "c3/eval/evaluator.h"
#include "c3/infer/compressor.h"
#include "c3/eval/fox_metrics.h"
#include "c3/eval/report.h"
#include "c3/infer/latent_file.h"
#include "c3/torch_compat.h"
#include "c3/util/atomic_file.h"
#include "c3/util/error.h"
#include "c3/util/parallel.h"
#include "c3/util/sha256.h"
#include "c3/version.h"

namespace fs = std::filesystem;
using json = nlohmann::json;

namespace c3::cli {
namespace {

constexpr const char* kJournal = "pages.partial.jsonl";

int score_only(const Config& c, int threads) {
  const auto pairs = read_scored_pairs(c.get<std::string>("eval.score"));
  std::vector<PageScores> scores(pairs.size());
  parallel_for_each(static_cast<int64_t>(pairs.size()), threads,
                    [&](int64_t i) { scores[i] = score_page(pairs[i].reference, pairs[i].prediction); });
  ScoreMeans means;
  const bool per_page = c.get<bool>("eval.per_page");
  std::string out;
  for (size_t i = 0; i < pairs.size(); ++i) {
    means.add(scores[i]);
    if (per_page) {
      json j = {{"id", pairs[i].id}};
      j.update(scores[i].to_json());
      out += j.dump() + "\n";
    }
  }
  // With --per-page the whole output is JSONL (the summary last); alone, the summary is indented.
  const json summary = means.to_json();
  out += per_page ? summary.dump() + "\n" : summary.dump(2) + "\n";
  std::fwrite(out.data(), 1, out.size(), stdout);
  if (summary["chinese_pages_segmented_by_character"].get<int64_t>() > 0)
    spdlog::warn("some records hold Chinese characters: segmented per character, not with jieba as the official script");
  return 0;
}

// SHA-256 over every page's id and text: names the data whatever file format held it.
std::string pages_digest(const std::vector<EvalPage>& pages) {
  std::string all;
  for (const auto& p : pages) all += p.id + '\0' + p.text + '\0';
  return sha256_hex(all);
}

// The page results of an interrupted run that are still up to date: made with the same model and
// settings (`key`) from a page that is still selected with the same text. The others are redone.
std::vector<PageResult> read_journal(const fs::path& path, const json& key, const std::vector<SelectedPage>& pages) {
  std::ifstream in(path);
  std::string line;
  if (!std::getline(in, line)) return {};
  json header;
  try {
    header = json::parse(line);
  } catch (const json::exception&) {
    fail_file(path.string(), "not a c3 eval journal (pass --force to start over)");
  }
  std::vector<PageResult> found;
  while (std::getline(in, line)) {
    try {
      found.push_back(PageResult::from_json(json::parse(line)));
    } catch (const json::exception&) {
      break;  // the line a kill cut short; what follows it cannot exist
    }
  }
  if (header.value("resume_key", json()) != key) {
    if (!found.empty())
      spdlog::warn("{}: its {} page results were made with another model or settings: redoing them", path.string(),
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
                 path.string(), found.size() - done.size());
  return done;
}

}  // namespace

class EvalCommand : public Command {
 public:
  std::string name() const override { return "eval"; }
  std::string summary() const override {
    return "Evaluate reconstruction on Fox-format pages (with --model), or score predictions (--score FILE)";
  }
  void setup(CLI::App& app, Options& o) override {
    app.add_option("data", data_, "Fox page-OCR JSON (en_page_ocr.json), JSONL with id and text, or a folder of .txt files");
    o.add_path(app, "-m,--model", "eval.model", "", "C3 checkpoint folder");
    o.add_path(app, "-o,--output", "eval.output", "", "Folder for pages.jsonl, summary.json, report.md and the plots");
    o.add_path(app, "--score", "eval.score", "", "Score a JSONL of label/answer (or reference/prediction) pairs, no model; - for stdin");
    o.add(app, "--per-page", "eval.per_page", false, "With --score: one JSON line per record before the summary");
    o.add(app, "--min-tokens", "eval.min_tokens", 600, "Pages with fewer text tokens are left out");
    o.add(app, "--max-tokens", "eval.max_tokens", 1300, "Pages with more text tokens are left out");
    o.add(app, "--bucket-width", "eval.bucket_width", 100, "Width of the text-token buckets of the report");
    o.add(app, "--perturb", "eval.perturb", json::array(),
          "Controls evaluated beside the pages themselves: shuffle-words, random-chars");
    o.add(app, "--seed", "eval.seed", 0, "Seed of the perturbations");
    o.add(app, "--limit", "eval.limit", 0, "Evaluate at most this many selected pages (0: all)");
    o.add(app, "--batch-size", "eval.batch_size", 8, "Spans (pages) decoded together");
    o.add(app, "--max-span-tokens", "eval.max_span_tokens", 0,
          "Pages with more text tokens are cut into spans of this many, as compress cuts them (0: what the length the "
          "model was trained on leaves, as compress)");
    o.add(app, "--max-new-tokens", "eval.max_new_tokens", 4096, "Longest reconstruction");
    o.add(app, "--no-repeat-ngram", "eval.no_repeat_ngram", 20, "Ban repeating n-grams of this size (0: off)");
    o.add(app, "--dtype", "eval.dtype", "auto", "Model dtype (auto: bfloat16 on CUDA, float32 on CPU)",
          {"auto", "float32", "bfloat16"});
    o.add(app, "--force", "eval.force", false, "Replace an existing output folder (or an interrupted run's journal)");
    o.config().declare("eval.progress", true, "Show a progress line on a terminal");
  }

  int run(const Config& c, const Runtime& runtime) override {
    if (!c.get<std::string>("eval.score").empty()) {
      if (!data_.empty() || !c.get<std::string>("eval.model").empty())
        throw UsageError("--score FILE scores predictions without a model: leave out --model and DATA");
      return score_only(c, runtime.threads);
    }
    if (data_.empty()) throw UsageError("DATA (Fox page-OCR JSON or JSONL) is required, or --score FILE");
    const fs::path out = c.get<std::string>("eval.output");
    if (out.empty()) throw UsageError("--output FOLDER is required (report.md, summary.json and pages.jsonl go there)");
    Buckets buckets{c.get<int64_t>("eval.min_tokens"), c.get<int64_t>("eval.max_tokens"), c.get<int64_t>("eval.bucket_width")};
    buckets.check();
    EvalOptions options;
    options.buckets = buckets;
    std::vector<std::string> condition_names{"none"};
    for (const auto& name : c.get<json>("eval.perturb")) {
      const Perturbation p = parse_perturbation(name.get<std::string>());
      if (p != Perturbation::kNone && std::find(condition_names.begin(), condition_names.end(), name) == condition_names.end())
        options.conditions.push_back(p), condition_names.push_back(name.get<std::string>());
    }
    options.seed = static_cast<uint64_t>(c.get<int64_t>("eval.seed"));
    options.batch_size = c.get<int64_t>("eval.batch_size");
    options.generate.max_new_tokens = c.get<int64_t>("eval.max_new_tokens");
    options.generate.no_repeat_ngram_size = c.get<int64_t>("eval.no_repeat_ngram");
    options.progress = c.get<bool>("eval.progress");
    options.threads = runtime.threads;
    const int64_t limit = c.get<int64_t>("eval.limit");
    if (options.batch_size <= 0 || options.generate.max_new_tokens <= 0 || options.generate.no_repeat_ngram_size < 0 || limit < 0)
      throw UsageError("--batch-size and --max-new-tokens must be positive, --no-repeat-ngram and --limit >= 0");

    const bool force = c.get<bool>("eval.force");
    std::error_code ec;
    if (fs::exists(out / "summary.json", ec) && !force)
      fail_file(out.string(), "already holds a finished evaluation (pass --force to replace it)");
    if (fs::exists(out, ec) && !fs::is_directory(out, ec)) fail_file(out.string(), "exists and is not a folder");

    const auto pages = read_eval_pages(data_);
    auto [model, tokenizer, folder] = load_model_for(c, "eval", runtime);
    const C3Prompt prompt(*tokenizer, model->config().latent_tokens);
    const auto selected = select_pages(pages, *tokenizer, buckets, limit);
    if (selected.empty())
      fail_file(data_, "no page has " + std::to_string(buckets.min_tokens) + "-" + std::to_string(buckets.max_tokens) +
                           " text tokens with this model's tokenizer");
    spdlog::info("{}: {} of {} pages have {}-{} text tokens; {} condition(s), {} latent tokens", data_, selected.size(),
                 pages.size(), buckets.min_tokens, buckets.max_tokens, condition_names.size(), prompt.latent_tokens());
    // Pages longer than the model was trained on are cut into spans, as compress cuts documents.
    const int64_t max_span_tokens = c.get<int64_t>("eval.max_span_tokens");
    if (max_span_tokens < 0) throw UsageError("--max-span-tokens must be >= 0");
    const int64_t window = model->config().max_length > 0 ? model->config().max_length : 8192;
    options.span_tokens = span_token_limit(prompt, max_span_tokens, window);
    const auto cut = std::count_if(selected.begin(), selected.end(), [&](const SelectedPage& p) { return p.tokens > options.span_tokens; });
    if (cut > 0)
      spdlog::info("{} of {} pages have more than {} text tokens ({}): they are cut into spans of at most {} tokens, "
                   "each compressed into {} latents, and their ratio counts all of them",
                   cut, selected.size(), options.span_tokens,
                   max_span_tokens > 0 ? "--max-span-tokens" : "what the " + std::to_string(window) + "-token window the model was trained on leaves",
                   options.span_tokens, prompt.latent_tokens());

    const std::string dtype = model->query.scalar_type() == at::kBFloat16 ? "bfloat16" : "float32";
    json run = {{"c3_version", C3_VERSION},
                {"model", folder.string()},
                {"model_fingerprint", model_fingerprint(model)},
                {"latent_tokens", prompt.latent_tokens()},
                {"data", data_},
                {"pages_sha256", pages_digest(pages)},  // the report's record of the data
                {"selection", {{"pages_read", pages.size()}, {"pages_selected", selected.size()}, {"limit", limit}}},
                {"generation",
                 {{"max_new_tokens", options.generate.max_new_tokens},
                  {"max_span_tokens", options.span_tokens},
                  {"pages_cut_into_spans", cut},
                  {"no_repeat_ngram", options.generate.no_repeat_ngram_size},
                  {"batch_size", options.batch_size},
                  {"dtype", dtype},
                  {"device", runtime.device.str()}}},
                {"conditions_requested", condition_names},
                {"seed", options.seed}};
    // Pages already done by an interrupted run with the same settings are kept (the journal).
    json key = run;
    key.erase("c3_version");
    key.erase("pages_sha256");  // pages are checked one by one (read_journal)
    key.erase("data");
    key.erase("selection");
    key["generation"].erase("batch_size");
    key["generation"].erase("pages_cut_into_spans");  // follows from the pages, checked one by one
    key["buckets"] = {buckets.min_tokens, buckets.max_tokens, buckets.width};
    if (force)  // only what eval writes: OUTPUT may be a folder holding other things
      for (const char* name : {"pages.jsonl", "summary.json", "report.md", "precision_vs_ratio.svg", "position_curve.svg", kJournal})
        fs::remove(out / name, ec);
    fs::create_directories(out, ec);
    if (ec) fail_file(out.string(), "cannot create folder: " + ec.message());
    const fs::path journal = out / kJournal;
    std::vector<PageResult> done = fs::exists(journal, ec) ? read_journal(journal, key, selected) : std::vector<PageResult>{};
    if (!done.empty()) spdlog::info("resuming: {} page results from the interrupted run in {}", done.size(), journal.string());
    {
      // Rewrite the journal with what is kept (a cut-off last line is dropped), then append.
      std::string kept = json{{"resume_key", key}}.dump() + "\n";
      for (const auto& r : done) kept += r.to_json().dump() + "\n";
      write_file_atomically(journal, kept);
    }
    std::FILE* log = std::fopen(journal.c_str(), "a");
    if (!log) fail_file(journal.string(), "cannot open for appending");
    const auto start = std::chrono::steady_clock::now();
    std::vector<PageResult> results;
    try {
      results = evaluate(model, *tokenizer, prompt, selected, options, done, [&](const std::vector<PageResult>& batch) {
        std::string lines;
        for (const auto& r : batch) lines += r.to_json().dump() + "\n";
        if (std::fwrite(lines.data(), 1, lines.size(), log) != lines.size() || std::fflush(log) != 0)
          fail_file(journal.string(), "write failed");
        ::fsync(fileno(log));
      });
    } catch (...) {
      std::fclose(log);
      throw;
    }
    std::fclose(log);

    int64_t generated = 0;
    for (const auto& r : results) generated += r.generated_tokens;
    run["seconds"] = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    run["generated_tokens"] = generated;
    run["resumed_pages"] = done.size();
    const json summary = summarize(results, buckets, condition_names, run);
    std::string lines;
    for (const auto& r : results) lines += r.to_json().dump() + "\n";
    write_file_atomically(out / "pages.jsonl", lines);
    write_file_atomically(out / "precision_vs_ratio.svg", precision_plot_svg(summary, results));
    write_file_atomically(out / "position_curve.svg", position_plot_svg(summary));
    write_file_atomically(out / "report.md", report_markdown(summary));
    write_file_atomically(out / "summary.json", summary.dump(2) + "\n");  // last: its presence means finished
    fs::remove(journal, ec);
    const json& overall = summary["conditions"]["none"]["overall"];
    spdlog::info("{} pages: precision {:.2f}%, 1 - edit distance {:.2f}%, mean ratio {:.1f}x; report in {}",
                 overall["pages"].get<int64_t>(), 100 * overall["precision"].get<double>(),
                 100 * overall["one_minus_edit_distance"].get<double>(), overall["mean_ratio"].get<double>(),
                 (out / "report.md").string());
    return 0;
  }

 private:
  std::string data_;
};

C3_REGISTER_COMMAND(EvalCommand);

}  // namespace c3::cli
