// c3 eval --model DIR DATA -o OUT: the Fox protocol (pages by token count, compress +
// reconstruct, score) and its report. c3 eval --score FILE: the scorer alone, on any predictions.
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstdio>

#include "batch_common.h"
#include "c3/eval/context_utility.h"
#include "c3/eval/eval_data.h"
#include "c3/eval/eval_run.h"
#include "c3/eval/fox_metrics.h"
#include "c3/eval/instruct_eval.h"
#include "c3/util/dtype.h"
#include "c3/util/error.h"
#include "c3/util/file_selection.h"
#include "c3/util/parallel.h"
#include "c3/util/stop_signals.h"

namespace fs = std::filesystem;
using json = nlohmann::json;

namespace c3::cli {
namespace {

int score_only(const std::string& file, bool per_page, int threads) {
  const auto pairs = read_scored_pairs(file);
  std::vector<PageScores> scores(pairs.size());
  parallel_for_each(static_cast<int64_t>(pairs.size()), threads,
                    [&](int64_t i) { scores[i] = score_page(pairs[i].reference, pairs[i].prediction); });
  ScoreMeans means;
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
    spdlog::warn(
        "some records hold Chinese characters: segmented per character, not with jieba as the official script");
  return 0;
}

}  // namespace

// What `c3 eval` runs with.
struct EvalJob {
  std::string task = "reconstruct";
  std::vector<int64_t> spans_back;
  std::string model, dtype, quantize, score, output;
  std::vector<std::string> include, exclude;
  bool per_page = false, progress = true;
  EvalRunSettings run;
};

// Every eval.* key, its flag, default and help, and the field it fills.
const SettingsTable<EvalJob>& eval_table() {
  static const SettingsTable<EvalJob> table = [] {
    SettingsTable<EvalJob> t;
    t.path("-m,--model", "eval.model", "", "C3 checkpoint folder", C3_FIELD(model));
    t.value("--task", "eval.task", "reconstruct",
            "reconstruct: the Fox protocol; continue: the context utility of latents for continuing documents; "
            "instruct: answers to records of context, instruction and answer (exact match, F1)",
            C3_FIELD(task), {"reconstruct", "continue", "instruct"});
    t.custom("--spans-back", "eval.spans_back", json::array({1, 2, 4, 8}),
             "--task continue: numbers of spans of context before each span (repeat the flag for more)",
             [](const Config& c, const std::string& key, EvalJob& j) {
               j.spans_back.clear();
               for (const auto& v : c.get<json>(key)) {  // numbers from a config file, strings from the flag
                 const std::string text = v.is_string() ? v.get<std::string>() : v.dump();
                 size_t used = 0;
                 int64_t k = 0;
                 try {
                   k = std::stoll(text, &used);
                 } catch (const std::exception&) {
                 }
                 if (used != text.size() || k < 1)
                   throw UsageError("--spans-back " + text + ": expected a whole number of spans, at least 1");
                 if (std::find(j.spans_back.begin(), j.spans_back.end(), k) == j.spans_back.end())
                   j.spans_back.push_back(k);
               }
               std::sort(j.spans_back.begin(), j.spans_back.end());
             });
    t.path("-o,--output", "eval.output", "", "Folder for pages.jsonl, summary.json, report.md and the plots",
           C3_FIELD(output));
    t.path("--score", "eval.score", "",
           "Score a JSONL of label/answer (or reference/prediction) pairs, no model; - for stdin", C3_FIELD(score));
    t.value("--include", "eval.include", text_file_globs(),
            "With a DATA folder: glob of files to take, as compress takes them (repeat the flag for more)",
            C3_FIELD(include));
    t.value("--exclude", "eval.exclude", json::array(),
            "With a DATA folder: glob of files or folders to leave out (repeat the flag for more)", C3_FIELD(exclude));
    t.value("--per-page", "eval.per_page", false, "With --score: one JSON line per record before the summary",
            C3_FIELD(per_page));
    t.value("--min-tokens", "eval.min_tokens", 600, "Pages with fewer text tokens are left out",
            C3_FIELD(run.options.buckets.min_tokens));
    t.value("--max-tokens", "eval.max_tokens", 1300, "Pages with more text tokens are left out",
            C3_FIELD(run.options.buckets.max_tokens));
    t.value("--bucket-width", "eval.bucket_width", 100, "Width of the text-token buckets of the report",
            C3_FIELD(run.options.buckets.width));
    t.custom("--perturb", "eval.perturb", json::array(),
             "Controls evaluated beside the pages themselves: shuffle-words, random-chars",
             [](const Config& c, const std::string& key, EvalJob& j) {
               j.run.conditions = {"none"};
               for (const auto& name : c.get<std::vector<std::string>>(key)) {
                 const Perturbation p = parse_perturbation(name);
                 auto& names = j.run.conditions;
                 if (p != Perturbation::kNone && std::find(names.begin(), names.end(), name) == names.end())
                   j.run.options.conditions.push_back(p), names.push_back(name);
               }
             });
    t.custom("--seed", "eval.seed", 0, "Seed of the perturbations",
             [](const Config& c, const std::string& key, EvalJob& j) { j.run.options.seed = c.get<uint64_t>(key); });
    t.value("--limit", "eval.limit", 0, "Evaluate at most this many selected pages (0: all)", C3_FIELD(run.limit));
    t.value("--batch-size", "eval.batch_size", 8, "Spans (pages) decoded together", C3_FIELD(run.options.batch_size));
    t.value(
        "--max-span-tokens", "eval.max_span_tokens", 0,
        "Pages with more text tokens are cut into spans of this many, as compress cuts them (0: what the length the "
        "model was trained on leaves, as compress)",
        C3_FIELD(run.max_span_tokens));
    t.value("--max-new-tokens", "eval.max_new_tokens", 4096,
            "Longest reconstruction (--task instruct: answer, default 128; --task continue: continuation, default "
            "the length of the span it continues, 0 for losses only)",
            C3_FIELD(run.options.generate.max_new_tokens));
    t.value("--no-repeat-ngram", "eval.no_repeat_ngram", 20, "Ban repeating n-grams of this size (0: off)",
            C3_FIELD(run.options.generate.no_repeat_ngram_size));
    t.value("--dtype", "eval.dtype", "auto", std::string("Model dtype (") + kAutoDtypeHelp + ")", C3_FIELD(dtype),
            dtype_choices());
    t.value("--quantize", "eval.quantize", "none", kQuantizeHelp, C3_FIELD(quantize), kQuantizeChoices);
    t.value("--force", "eval.force", false, "Replace an existing output folder (or an interrupted run's journal)",
            C3_FIELD(run.force));
    t.value("", "eval.progress", true, "Show a progress line on a terminal", C3_FIELD(run.options.progress));
    return t;
  }();
  return table;
}

class EvalCommand : public Command {
 public:
  std::string name() const override { return "eval"; }
  std::string summary() const override {
    return "Evaluate reconstruction on Fox-format pages (with --model), or score predictions (--score FILE)";
  }
  void setup(CLI::App& app, Options& o) override {
    app.add_option(
        "data", data_,
        "Fox page-OCR JSON (en_page_ocr.json), JSONL with id and text, a text file (one page), or a folder of "
        "text files (as compress takes them)");
    eval_table().declare(app, o);
  }

  int run(const Config& c, const Runtime& runtime) override {
    EvalJob job;
    eval_table().read(c, job);
    if (!job.score.empty()) {
      if (!data_.empty() || !job.model.empty())
        throw UsageError("--score FILE scores predictions without a model: leave out --model and DATA");
      if (!job.output.empty())
        throw UsageError(
            "--score prints its summary on stdout and writes no folder: leave out -o (redirect stdout instead)");
      return score_only(job.score, job.per_page, runtime.threads);
    }
    if (job.per_page)
      throw UsageError("--per-page goes with --score FILE (an evaluation writes every page to pages.jsonl)");
    if (data_.empty())
      throw UsageError("DATA (Fox page-OCR JSON, JSONL, a text file or a folder) is required, or --score FILE");
    if (job.task == "continue") return run_continue(c, job, runtime);
    if (job.task == "instruct") return run_instruct(c, job, runtime);
    EvalRunSettings& settings = job.run;
    settings.output = job.output;
    if (settings.output.empty())
      throw UsageError("--output FOLDER is required (report.md, summary.json and pages.jsonl go there)");
    settings.data = data_;
    settings.device = runtime.device.str();
    settings.options.threads = runtime.threads;
    check_options(settings);
    check_eval_output(settings.output, settings.force);
    const EvalData data = read_eval_data(data_, job.include, job.exclude);
    // Pages compress would refuse are named and left out, not scored as zeros.
    for (const auto& [where, why] : data.rejected) spdlog::error("{}: {} (left out)", where, why);
    settings.rejected = data.rejected;
    C3Codec codec = load_codec(job.model, job.dtype, runtime, kDefaultInstruction, job.quantize);
    const StopSignals stop;
    settings.options.generate.stop = &stop;
    const json summary = run_evaluation(codec, data.pages, settings);
    const json& overall = summary["conditions"]["none"]["overall"];
    spdlog::info("{} pages: precision {:.2f}%, 1 - edit distance {:.2f}%, mean ratio {:.1f}x; report in {}",
                 overall["pages"].get<int64_t>(), 100 * overall["precision"].get<double>(),
                 100 * overall["one_minus_edit_distance"].get<double>(), overall["mean_ratio"].get<double>(),
                 (settings.output / "report.md").string());
    if (data.rejected.empty()) return 0;
    spdlog::error("{} pages of {} could not be evaluated and were left out, starting with {}", data.rejected.size(),
                  data_, data.rejected.front().first);
    return 1;
  }

 private:
  // --task continue: documents cut into spans, each scored given the spans before it.
  int run_continue(const Config& c, const EvalJob& job, const Runtime& runtime) {
    for (const char* key : {"eval.perturb", "eval.min_tokens", "eval.max_tokens", "eval.bucket_width", "eval.quantize"})
      if (!c.origin(key).empty()) throw UsageError(std::string(key) + " is for --task reconstruct");
    if (job.output.empty())
      throw UsageError("--output FOLDER is required (report.md, summary.json and targets.jsonl go there)");
    ContextUtilityRun run;
    run.output = job.output, run.data = data_, run.device = runtime.device.str(), run.force = job.run.force;
    run.options.spans_back = job.spans_back;
    run.options.batch_size = job.run.options.batch_size;
    run.options.limit = job.run.limit;
    run.options.progress = job.run.options.progress;
    // Each continuation as long as the span it continues, unless set (0: losses only).
    if (!c.origin("eval.max_new_tokens").empty())
      run.options.continuation_tokens = job.run.options.generate.max_new_tokens;
    run.options.no_repeat_ngram_size = job.run.options.generate.no_repeat_ngram_size;
    if (job.run.max_span_tokens < 0 || job.run.limit < 0 || run.options.continuation_tokens < -1 ||
        run.options.no_repeat_ngram_size < 0)
      throw UsageError("--max-span-tokens, --max-new-tokens, --no-repeat-ngram and --limit must be >= 0");
    check_context_utility_output(run.output, run.force);
    const EvalData data = read_eval_data(data_, job.include, job.exclude);
    for (const auto& [where, why] : data.rejected) spdlog::error("{}: {} (left out)", where, why);
    C3Codec codec = load_codec(job.model, job.dtype, runtime, kDefaultInstruction, "none");
    run.options.span_tokens = span_limit(codec.model()->config(), codec.prompt(), job.run.max_span_tokens, 0).tokens;
    const StopSignals stop;
    run.options.stop = &stop;
    const json summary = run_context_utility(codec, data.pages, run);
    for (const auto& row : summary["rows"])
      spdlog::info(
          "{} spans back ({} targets): loss {:.4f} without context, {:.4f} with latents, {:.4f} with the text; "
          "utility {}; another document's latents {}, content utility {}{}",
          row["spans_back"].get<int64_t>(), row["targets"].get<int64_t>(), row["loss_none"].get<double>(),
          row["loss_latents"].get<double>(), row["loss_text"].get<double>(),
          row["utility"].is_number() ? fmt::format("{:.3f}", row["utility"].get<double>()) : "-",
          row["loss_other"].is_number() ? fmt::format("{:.4f}", row["loss_other"].get<double>()) : "-",
          row["content_utility"].is_number() ? fmt::format("{:.3f}", row["content_utility"].get<double>()) : "-",
          row["precision_latents"].is_number()
              ? fmt::format("; continuation precision {:.1f}% / {:.1f}% / {:.1f}%",
                            100 * row["precision_none"].get<double>(), 100 * row["precision_latents"].get<double>(),
                            100 * row["precision_text"].get<double>())
              : "");
    spdlog::info("report in {}", (run.output / "report.md").string());
    return data.rejected.empty() ? 0 : 1;
  }

  // --task instruct: each record answered from its context's latents, its text, and nothing.
  int run_instruct(const Config& c, const EvalJob& job, const Runtime& runtime) {
    for (const char* key : {"eval.perturb", "eval.min_tokens", "eval.max_tokens", "eval.bucket_width",
                            "eval.spans_back", "eval.include", "eval.exclude"})
      if (!c.origin(key).empty()) throw UsageError(std::string(key) + " does not apply to --task instruct");
    if (job.output.empty())
      throw UsageError("--output FOLDER is required (report.md, summary.json and answers.jsonl go there)");
    InstructEvalRun run;
    run.output = job.output, run.data = data_, run.device = runtime.device.str(), run.force = job.run.force;
    run.limit = job.run.limit;
    run.progress = job.run.options.progress;
    run.generate = job.run.options.generate;
    // Answers are short: a model that never says <|im_end|> should not generate 4096 tokens three times a record.
    if (c.origin("eval.max_new_tokens").empty()) run.generate.max_new_tokens = 128;
    if (job.run.max_span_tokens < 0 || job.run.limit < 0 || run.generate.max_new_tokens <= 0)
      throw UsageError("--max-span-tokens and --limit must be >= 0, --max-new-tokens positive");
    check_instruct_eval_output(run.output, run.force);
    const auto records = read_instruct_records(data_);
    C3Codec codec = load_codec(job.model, job.dtype, runtime, kDefaultInstruction, job.quantize);
    run.span_tokens = span_limit(codec.model()->config(), codec.prompt(), job.run.max_span_tokens, 0).tokens;
    const StopSignals stop;
    run.generate.stop = &stop;
    const json summary = run_instruct_eval(codec, records, run);
    for (const auto& row : summary["rows"])
      spdlog::info("context {}: exact match {:.1f}%, F1 {:.1f}%", row["context"].get<std::string>(),
                   100 * row["exact_match"].get<double>(), 100 * row["f1"].get<double>());
    spdlog::info("report in {}", (run.output / "report.md").string());
    return 0;
  }

  static void check_options(const EvalRunSettings& s) {
    s.options.buckets.check();
    const EvalOptions& o = s.options;
    if (o.batch_size <= 0 || o.generate.max_new_tokens <= 0 || o.generate.no_repeat_ngram_size < 0 || s.limit < 0)
      throw UsageError("--batch-size and --max-new-tokens must be positive, --no-repeat-ngram and --limit >= 0");
  }

  std::string data_;
};

C3_REGISTER_COMMAND(EvalCommand);

}  // namespace c3::cli
