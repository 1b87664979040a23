#include "c3/eval/context_utility.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <deque>
#include <map>

#include "c3/eval/eval_run.h"
#include "c3/eval/fox_metrics.h"
#include "c3/eval/result_journal.h"
#include "c3/infer/generate.h"
#include "c3/model/c3_loss.h"
#include "c3/util/atomic_file.h"
#include "c3/util/dtype.h"
#include "c3/util/error.h"
#include "c3/util/output_record.h"
#include "c3/util/sha256.h"
#include "c3/util/status_line.h"
#include "c3/version.h"
#include "svg_plot.h"

namespace fs = std::filesystem;
using json = nlohmann::json;

namespace c3 {

double context_utility(double loss_none, double loss_latents, double loss_text) {
  if (!(loss_none > loss_text)) return std::nan("");
  return (loss_none - loss_latents) / (loss_none - loss_text);
}

namespace {

json number(double x) { return std::isfinite(x) ? json(x) : json(); }
double number_of(const json& j) { return j.is_number() ? j.get<double>() : std::nan(""); }

}  // namespace

json UtilityRow::to_json() const {
  return {{"spans_back", spans_back},
          {"targets", targets},
          {"tokens", tokens},
          {"loss_none", number(loss_none)},
          {"loss_latents", number(loss_latents)},
          {"loss_text", number(loss_text)},
          {"utility", number(utility)},
          {"precision_none", number(precision_none)},
          {"precision_latents", number(precision_latents)},
          {"precision_text", number(precision_text)},
          {"loss_other", number(loss_other)},
          {"content_utility", number(content_utility)}};
}

json TargetLosses::to_json() const {
  json back = json::object();
  for (const auto& [k, pair] : by_k) {
    json one = {{"latents", pair.first}, {"text", pair.second}};
    if (const auto it = precision_by_k.find(k); it != precision_by_k.end())
      one["latents_precision"] = number(it->second.first), one["text_precision"] = number(it->second.second);
    if (const auto it = other_by_k.find(k); it != other_by_k.end()) one["other_latents"] = it->second;
    back[std::to_string(k)] = one;
  }
  return {{"document", document},
          {"control_sha256", control_sha256},
          {"document_sha256", document_sha256},
          {"span", span},
          {"tokens", tokens},
          {"loss_none", none},
          {"precision_none", number(precision_none)},
          {"spans_back", back}};
}

TargetLosses TargetLosses::from_json(const json& j) {
  TargetLosses t;
  t.document = j.at("document").get<std::string>();
  t.span = j.at("span").get<int64_t>(), t.tokens = j.at("tokens").get<int64_t>();
  t.none = j.at("loss_none").get<double>();
  t.document_sha256 = j.value("document_sha256", "");
  t.control_sha256 = j.value("control_sha256", "");
  t.precision_none = number_of(j.value("precision_none", json()));
  for (const auto& [k, one] : j.at("spans_back").items()) {
    const int64_t back = std::stoll(k);
    t.by_k[back] = {one.at("latents").get<double>(), one.at("text").get<double>()};
    if (one.contains("latents_precision"))
      t.precision_by_k[back] = {number_of(one["latents_precision"]), number_of(one["text_precision"])};
    if (one.contains("other_latents")) t.other_by_k[back] = one["other_latents"].get<double>();
  }
  return t;
}

namespace {

// Means of the precisions that were measured (NaN when none was).
struct PrecisionMean {
  double sum = 0;
  int64_t count = 0;
  void add(double p) {
    if (std::isfinite(p)) sum += p, ++count;
  }
  double mean() const { return count > 0 ? sum / static_cast<double>(count) : std::nan(""); }
};

}  // namespace

std::vector<UtilityRow> utility_rows(const std::vector<TargetLosses>& targets, const std::vector<int64_t>& spans_back) {
  std::vector<UtilityRow> rows;
  for (int64_t k : spans_back) {
    UtilityRow row{k};
    double none = 0, latents = 0, text = 0, other = 0;
    int64_t with_other = 0;
    PrecisionMean p_none, p_latents, p_text;
    for (const auto& t : targets) {
      const auto it = t.by_k.find(k);
      if (it == t.by_k.end()) continue;
      ++row.targets, row.tokens += t.tokens;
      none += t.none, latents += it->second.first, text += it->second.second;
      p_none.add(t.precision_none);
      if (const auto o = t.other_by_k.find(k); o != t.other_by_k.end()) other += o->second, ++with_other;
      if (const auto p = t.precision_by_k.find(k); p != t.precision_by_k.end())
        p_latents.add(p->second.first), p_text.add(p->second.second);
    }
    if (row.targets == 0) continue;
    const auto n = static_cast<double>(row.tokens);
    row.loss_none = none / n, row.loss_latents = latents / n, row.loss_text = text / n;
    row.utility = context_utility(row.loss_none, row.loss_latents, row.loss_text);
    row.precision_none = p_none.mean(), row.precision_latents = p_latents.mean(), row.precision_text = p_text.mean();
    if (with_other == row.targets) {
      row.loss_other = other / n;
      if (row.loss_none > row.loss_text)
        row.content_utility = (row.loss_other - row.loss_latents) / (row.loss_none - row.loss_text);
    }
    rows.push_back(row);
  }
  return rows;
}

namespace {

// kOther: the control, latents of k spans of another document in the same place (what latents
// give that is not their content).
enum Context { kNone = 0, kLatents = 1, kText = 2, kOther = 3 };

// One decoder row to score: a target span under one context.
struct Row {
  int64_t target;  // index into the targets
  Context context;
  int64_t k;  // spans back (0 for kNone)
  C3Example example;
};

std::string target_key(const std::string& document, int64_t span) { return document + '\0' + std::to_string(span); }

// The targets and their rows, every span after a document's first, with the spans and texts the
// rows point into.
struct Targets {
  std::deque<std::vector<int32_t>> spans, texts;  // stable addresses for the rows' pointers
  std::vector<TargetLosses> sums;
  std::vector<std::string> references;  // each target's text
  std::vector<Row> rows;
  // Per document: its first span in `spans`, its span count and the spans' texts.
  std::vector<std::pair<size_t, int64_t>> documents;
  std::vector<std::vector<std::string>> span_texts;
};

// Cuts a document into spans (all documents are cut before any rows are made: the control rows
// point into other documents).
void cut_document(Targets& t, ContextUtility& out, const EvalPage& doc, const Tokenizer& tokenizer,
                  const ContextUtilityOptions& o) {
  ++out.documents;
  const size_t first = t.spans.size();
  std::vector<std::string> texts;
  for (auto& span : cut_spans(doc.text, tokenizer, o.span_tokens)) {
    texts.push_back(doc.text.substr(static_cast<size_t>(span.begin), static_cast<size_t>(span.end - span.begin)));
    t.spans.push_back(std::move(span.ids));
  }
  const auto count = static_cast<int64_t>(t.spans.size() - first);
  out.spans += count;
  for (size_t j = first; j < t.spans.size(); ++j) out.span_tokens += static_cast<int64_t>(t.spans[j].size());
  t.documents.emplace_back(first, count);
  t.span_texts.push_back(std::move(texts));
}

// The control's k spans for span i of document d: from the next document (cyclically) with at
// least k spans, the k before its span i (or its last k when it is shorter). Empty when none has
// k; `source` is then left alone, else set to that document's index.
std::vector<const std::vector<int32_t>*> other_context(const Targets& t, size_t d, int64_t i, int64_t k,
                                                       size_t& source) {
  for (size_t step = 1; step < t.documents.size(); ++step) {
    const size_t o = (d + step) % t.documents.size();
    const auto [first, count] = t.documents[o];
    if (count < k) continue;
    source = o;
    const int64_t end = std::min(i, count);
    std::vector<const std::vector<int32_t>*> context;
    for (int64_t j = end - k; j < end; ++j) context.push_back(&t.spans[first + static_cast<size_t>(j)]);
    return context;
  }
  return {};
}

// Every span of document d after its first is a target, scored under each context.
void add_targets(Targets& t, size_t d, const std::vector<EvalPage>& documents, const C3Prompt& prompt,
                 const ContextUtilityOptions& o) {
  const EvalPage& doc = documents[d];
  const std::string digest = sha256_hex(doc.text);
  const auto [first, count] = t.documents[d];
  for (int64_t i = 1; i < count; ++i) {
    const auto index = static_cast<int64_t>(t.sums.size());
    const std::vector<int32_t>* target = &t.spans[first + static_cast<size_t>(i)];
    TargetLosses sums;
    sums.document = doc.id, sums.span = i, sums.tokens = static_cast<int64_t>(target->size());
    sums.document_sha256 = digest;
    std::string controls;  // the documents the controls come from: a target is redone when one changes
    t.references.push_back(t.span_texts[d][static_cast<size_t>(i)]);
    t.rows.push_back({index, kNone, 0, {&prompt, {}, target, nullptr, false}});
    for (int64_t k : o.spans_back) {
      if (k > i) continue;
      C3Example latents{&prompt, {}, target, nullptr, false};
      std::vector<int32_t> text;
      for (int64_t j = i - k; j < i; ++j) {
        latents.context.push_back(&t.spans[first + static_cast<size_t>(j)]);
        text.insert(text.end(), t.spans[first + static_cast<size_t>(j)].begin(),
                    t.spans[first + static_cast<size_t>(j)].end());
      }
      t.texts.push_back(std::move(text));
      t.rows.push_back({index, kLatents, k, latents});
      t.rows.push_back({index, kText, k, {&prompt, {}, target, &t.texts.back(), false}});
      size_t source = d;
      C3Example other{&prompt, other_context(t, d, i, k, source), target, nullptr, false};
      if (other.context.empty()) continue;
      t.rows.push_back({index, kOther, k, other});
      controls += documents[source].id + '\0' + documents[source].text + '\0';
    }
    sums.control_sha256 = sha256_hex(controls);
    t.sums.push_back(sums);
  }
}

// Where a row's loss or precision goes.
double& loss_slot(TargetLosses& s, const Row& row) {
  if (row.context == kNone) return s.none;
  if (row.context == kOther) return s.other_by_k[row.k];
  auto& pair = s.by_k[row.k];
  return row.context == kLatents ? pair.first : pair.second;
}
double& precision_slot(TargetLosses& s, const Row& row) {
  if (row.context == kNone) return s.precision_none;
  auto& pair = s.precision_by_k.try_emplace(row.k, std::nan(""), std::nan("")).first->second;
  return row.context == kLatents ? pair.first : pair.second;
}

// Greedy continuations of a batch of rows, each at most its target's length (or the set number of
// tokens), scored by word precision against the target's text.
void score_continuations(C3Codec& codec, const std::vector<Row>& rows, size_t start, size_t end, Targets& t,
                         const ContextUtilityOptions& o) {
  std::vector<C3Example> batch;
  std::vector<size_t> which;  // the rows generated for: not the control's
  int64_t longest = 0;
  for (size_t r = start; r < end; ++r) {
    if (rows[r].context == kOther) continue;
    batch.push_back(rows[r].example), which.push_back(r);
    longest = std::max(longest, t.sums[rows[r].target].tokens);
  }
  if (batch.empty()) return;
  GenerateOptions generate;
  generate.max_new_tokens = o.continuation_tokens > 0 ? o.continuation_tokens : longest;
  generate.no_repeat_ngram_size = o.no_repeat_ngram_size;
  generate.stop = o.stop;
  auto ids = generate_answers(codec.model(), batch, generate);
  for (size_t b = 0; b < which.size(); ++b) {
    const Row& row = rows[which[b]];
    auto& out = ids[b];
    const int64_t limit = o.continuation_tokens > 0 ? o.continuation_tokens : t.sums[row.target].tokens;
    if (static_cast<int64_t>(out.size()) > limit) out.resize(static_cast<size_t>(limit));
    const std::string continuation = decode_reconstruction(codec.tokenizer(), out);
    precision_slot(t.sums[row.target], row) = score_page(t.references[row.target], continuation).precision;
  }
}

}  // namespace

ContextUtility measure_context_utility(C3Codec& codec, const std::vector<EvalPage>& documents,
                                       const ContextUtilityOptions& o, const std::vector<TargetLosses>& done,
                                       const std::function<void(const std::vector<TargetLosses>&)>& on_targets) {
  if (o.span_tokens <= 0 || o.batch_size <= 0) throw UsageError("--max-span-tokens and --batch-size must be positive");
  for (int64_t k : o.spans_back)
    if (k < 1) throw UsageError("--spans-back: each number of spans must be at least 1");
  const C3Config& config = codec.model()->config();
  const C3Prompt prompt(codec.tokenizer(), config.latent_tokens, codec.prompt().prompt_template(),
                        kContinueInstruction);
  ContextUtility out;
  Targets t;
  for (const auto& doc : documents) {
    if (o.limit > 0 && out.documents >= o.limit) break;
    cut_document(t, out, doc, codec.tokenizer(), o);
  }
  for (size_t d = 0; d < t.documents.size(); ++d) add_targets(t, d, documents, prompt, o);
  if (t.sums.empty())
    throw UsageError("no document is long enough for two spans of " + std::to_string(o.span_tokens) +
                     " tokens: nothing to continue (lower --max-span-tokens)");
  // Targets the journal holds are taken from it, their rows left out.
  std::map<std::string, const TargetLosses*> finished;
  for (const auto& d : done) finished[target_key(d.document, d.span)] = &d;
  std::vector<bool> resumed(t.sums.size(), false);
  for (size_t i = 0; i < t.sums.size(); ++i) {
    const auto it = finished.find(target_key(t.sums[i].document, t.sums[i].span));
    if (it != finished.end() && it->second->document_sha256 == t.sums[i].document_sha256 &&
        it->second->control_sha256 == t.sums[i].control_sha256)
      t.sums[i] = *it->second, resumed[i] = true, ++out.resumed;
  }
  std::vector<Row> rows;
  for (const auto& row : t.rows)
    if (!resumed[row.target]) rows.push_back(row);
  spdlog::info(
      "{} documents cut into {} spans of at most {} tokens ({} latents each): {} spans to continue, {} "
      "decoder rows{}",
      out.documents, out.spans, o.span_tokens, config.latent_tokens, t.sums.size(), t.rows.size(),
      rows.size() < t.rows.size() ? fmt::format(" ({} to score, the rest resumed)", rows.size()) : "");

  torch::NoGradGuard no_grad;
  JobProgress progress("scoring", static_cast<int64_t>(rows.size()), o.progress, "rows");
  int64_t tokens = 0;
  size_t flushed = 0;  // targets (in order) handed to on_targets or resumed
  auto flush_until = [&](size_t limit) {
    std::vector<TargetLosses> ready;
    for (; flushed < limit; ++flushed)
      if (!resumed[flushed]) ready.push_back(t.sums[flushed]);
    if (!ready.empty() && on_targets) on_targets(ready);
  };
  for (size_t start = 0; start < rows.size(); start += static_cast<size_t>(o.batch_size)) {
    throw_if_stopped(o.stop);
    const size_t end = std::min(rows.size(), start + static_cast<size_t>(o.batch_size));
    std::vector<C3Example> batch;
    for (size_t r = start; r < end; ++r) batch.push_back(rows[r].example);
    const C3LossOutput loss = c3_loss(codec.model(), make_c3_batch(batch).to(codec.model()->device()), 0);
    const at::Tensor row_loss = loss.row_loss_sum.cpu().to(at::kDouble);
    for (size_t r = start; r < end; ++r)
      loss_slot(t.sums[rows[r].target], rows[r]) = row_loss[static_cast<int64_t>(r - start)].item<double>();
    if (o.continuation_tokens != 0) score_continuations(codec, rows, start, end, t, o);
    tokens += loss.tokens;
    progress.update(static_cast<int64_t>(end), tokens);
    // Rows come target by target: the targets before the next row's are finished.
    flush_until(end < rows.size() ? static_cast<size_t>(rows[end].target) : t.sums.size());
  }
  flush_until(t.sums.size());
  progress.clear();

  out.rows = utility_rows(t.sums, o.spans_back);
  out.targets = std::move(t.sums);
  return out;
}

namespace {

std::string report_markdown(const json& summary) {
  std::string md = "# Context utility: latents as context for continuation\n\n";
  md += fmt::format(
      "Model `{}` ({} latents per span), data `{}`: {} documents cut into {} spans of at most {} tokens "
      "({:.1f}x compression per span). Each span after the first is scored (mean loss per token, nats) by the "
      "decoder told \"{}\" with no context, with the latents of the k spans before it, and with those k spans as "
      "plain tokens. Utility = (none - latents) / (none - text): 1 means the latents serve as well as the text, 0 "
      "that they do not help.\n\n",
      summary["model"].get<std::string>(), summary["latent_tokens"].get<int64_t>(), summary["data"].get<std::string>(),
      summary["documents"].get<int64_t>(), summary["spans"].get<int64_t>(), summary["span_tokens"].get<int64_t>(),
      summary["mean_ratio"].get<double>(), kContinueInstruction);
  md +=
      "| spans back | targets | tokens | loss, no context | loss, latents | loss, text | utility | loss, other "
      "document's latents | content utility |\n";
  md += "|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n";
  auto cell = [](const json& v) { return v.is_number() ? fmt::format("{:.4f}", v.get<double>()) : std::string("-"); };
  for (const auto& row : summary["rows"])
    md += fmt::format("| {} | {} | {} | {} | {} | {} | {} | {} | {} |\n", row["spans_back"].get<int64_t>(),
                      row["targets"].get<int64_t>(), row["tokens"].get<int64_t>(), cell(row["loss_none"]),
                      cell(row["loss_latents"]), cell(row["loss_text"]), cell(row["utility"]), cell(row["loss_other"]),
                      cell(row["content_utility"]));
  md += "\nA utility of `-` means the text itself did not lower the loss (no utility is defined there).\n";
  md +=
      "The control scores each span given the latents of k spans of another document (the next one with k "
      "spans) in the same place: latents can lower the loss without carrying their span, as a learned prompt for "
      "the corpus does. Content utility = (other - latents) / (none - text) counts only what the span's own "
      "latents add.\n";
  if (summary["continuation_tokens"].get<int64_t>() != 0) {
    auto percent = [](const json& v) {
      return v.is_number() ? fmt::format("{:.1f}%", 100 * v.get<double>()) : std::string("-");
    };
    md += "\nWord precision of the greedy continuation (no_repeat_ngram " +
          std::to_string(summary["no_repeat_ngram"].get<int64_t>()) +
          ") against the real next span, mean over targets: the share of the continuation's words that the span "
          "holds, as the Fox protocol scores a reconstruction.\n\n";
    md += "| spans back | no context | latents | text |\n|---:|---:|---:|---:|\n";
    for (const auto& row : summary["rows"])
      md += fmt::format("| {} | {} | {} | {} |\n", row["spans_back"].get<int64_t>(), percent(row["precision_none"]),
                        percent(row["precision_latents"]), percent(row["precision_text"]));
    md += "\n";
  }
  md +=
      "The plots are `context_utility.svg` and `context_losses.svg` (the three losses by k); every target's "
      "losses are in `targets.jsonl`.\n";
  return md;
}

std::string utility_svg(const json& summary) {
  SvgPlot plot("Context utility by spans of context", "spans back (k)", "(L_none - L_latents) / (L_none - L_text)");
  SvgPlot::Points points;
  for (const auto& row : summary["rows"])
    if (row["utility"].is_number())
      points.emplace_back(static_cast<double>(row["spans_back"].get<int64_t>()), row["utility"].get<double>());
  plot.set_y_range(std::min(0.0, points.empty() ? 0.0
                                                : std::min_element(points.begin(), points.end(),
                                                                   [](auto& a, auto& b) { return a.second < b.second; })
                                                      ->second),
                   1.05);
  plot.add_line("utility", "#1f77b4", points);
  plot.add_points("", "#1f77b4", points);
  return plot.render();
}

// The three losses by k: readable where the utility is not defined (the text does not help).
std::string losses_svg(const json& summary) {
  SvgPlot plot("Loss of the next span by spans of context", "spans back (k)", "mean loss per token (nats)");
  const std::pair<const char*, const char*> series[] = {
      {"loss_none", "#7f7f7f"}, {"loss_latents", "#1f77b4"}, {"loss_text", "#ff7f0e"}};
  for (const auto& [key, color] : series) {
    SvgPlot::Points points;
    for (const auto& row : summary["rows"])
      if (row[key].is_number())
        points.emplace_back(static_cast<double>(row["spans_back"].get<int64_t>()), row[key].get<double>());
    const std::string legend = std::string(key).substr(5);  // none, latents, text
    plot.add_line(legend, color, points, std::string(key) == "loss_none");
    plot.add_points("", color, points);
  }
  return plot.render();
}

}  // namespace

namespace {

constexpr const char* kTargetsJournal = "targets.partial.jsonl";

// A journaled target is current when its document is still read with the same text.
ResultJournal::StillCurrent document_unchanged(const std::vector<EvalPage>& documents) {
  std::map<std::string, std::string> digests;
  for (const auto& d : documents) digests[d.id] = sha256_hex(d.text);
  return ResultJournal::input_unchanged(std::move(digests), "document", "document_sha256");
}

}  // namespace

std::vector<fs::path> context_utility_outputs(const fs::path& output) {
  return {output / "targets.jsonl",      output / "report.md",    output / "context_utility.svg",
          output / "context_losses.svg", output / "summary.json", output / kTargetsJournal};
}

void check_context_utility_output(const fs::path& output, bool force) {
  check_eval_folder(output, context_utility_outputs(output), written_by_eval, force);
}

json run_context_utility(C3Codec& codec, const std::vector<EvalPage>& documents, const ContextUtilityRun& run) {
  const auto start = std::chrono::steady_clock::now();
  const ContextUtilityOptions& o = run.options;
  const int64_t n = codec.model()->config().latent_tokens;
  // What a journaled target must have been made with to be kept; the summary records it too.
  const json key{{"task", "continue"},
                 {"model_fingerprint", codec.fingerprint()},
                 {"latent_tokens", n},
                 {"span_tokens", o.span_tokens},
                 {"spans_back", o.spans_back},
                 {"control", "other-document latents"},
                 {"instruction", kContinueInstruction},
                 {"continuation_tokens", o.continuation_tokens},
                 {"no_repeat_ngram", o.no_repeat_ngram_size},
                 {"dtype", scalar_type_name(codec.model()->dtype())},
                 {"device", run.device}};
  const size_t foreign = prepare_eval_outputs(context_utility_outputs(run.output), run.force);
  ResultJournal journal(run.output / kTargetsJournal, key, document_unchanged(documents), "target results");
  std::vector<TargetLosses> done;
  for (const auto& r : journal.done()) done.push_back(TargetLosses::from_json(r));
  ContextUtility result;
  try {
    result = measure_context_utility(codec, documents, o, done, [&](const std::vector<TargetLosses>& finished) {
      std::vector<json> lines;
      for (const auto& t : finished) lines.push_back(t.to_json());
      journal.append(lines);
    });
  } catch (const Interrupted& stop) {
    spdlog::warn("interrupted by {}: {} target results are kept in {}; rerun the same command to resume",
                 Interrupted::signal_name(stop.signal()), journal.results(), journal.path().string());
    throw;
  }
  json rows = json::array();
  for (const auto& row : result.rows) rows.push_back(row.to_json());
  std::string all;
  for (const auto& d : documents) all += d.id + '\0' + d.text + '\0';
  json summary = key;
  summary.update({{"c3_version", C3_VERSION},
                  {"model", codec.folder().string()},
                  {"data", run.data},
                  {"documents_sha256", sha256_hex(all)},
                  {"documents", result.documents},
                  {"spans", result.spans},
                  {"mean_ratio", static_cast<double>(result.span_tokens) / static_cast<double>(result.spans * n)},
                  {"foreign_files_replaced", foreign},
                  {"resumed_targets", result.resumed},
                  {"rows", rows}});
  summary["seconds"] = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  const std::string record_key = sha256_hex(summary.dump());
  make_folder(run.output);
  std::string lines;
  for (const auto& t : result.targets) lines += t.to_json().dump() + "\n";
  write_recorded_output(run.output / "targets.jsonl", lines, record_key);
  write_recorded_output(run.output / "report.md", report_markdown(summary), record_key);
  write_recorded_output(run.output / "context_utility.svg", utility_svg(summary), record_key);
  write_recorded_output(run.output / "context_losses.svg", losses_svg(summary), record_key);
  // Last: its presence means finished.
  write_recorded_output(run.output / "summary.json", summary.dump(2) + "\n", record_key);
  journal.remove();
  return summary;
}

}  // namespace c3
