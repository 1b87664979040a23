#include "c3/eval/context_utility.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <deque>
#include <map>

#include "c3/eval/eval_run.h"
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

json UtilityRow::to_json() const {
  auto number = [](double x) { return std::isfinite(x) ? json(x) : json(); };
  return {{"spans_back", spans_back},
          {"targets", targets},
          {"tokens", tokens},
          {"loss_none", number(loss_none)},
          {"loss_latents", number(loss_latents)},
          {"loss_text", number(loss_text)},
          {"utility", number(utility)}};
}

json TargetLosses::to_json() const {
  json back = json::object();
  for (const auto& [k, pair] : by_k) back[std::to_string(k)] = {{"latents", pair.first}, {"text", pair.second}};
  return {{"document", document}, {"span", span}, {"tokens", tokens}, {"loss_none", none}, {"spans_back", back}};
}

std::vector<UtilityRow> utility_rows(const std::vector<TargetLosses>& targets, const std::vector<int64_t>& spans_back) {
  std::vector<UtilityRow> rows;
  for (int64_t k : spans_back) {
    UtilityRow row{k};
    double none = 0, latents = 0, text = 0;
    for (const auto& t : targets) {
      const auto it = t.by_k.find(k);
      if (it == t.by_k.end()) continue;
      ++row.targets, row.tokens += t.tokens;
      none += t.none, latents += it->second.first, text += it->second.second;
    }
    if (row.targets == 0) continue;
    const auto n = static_cast<double>(row.tokens);
    row.loss_none = none / n, row.loss_latents = latents / n, row.loss_text = text / n;
    row.utility = context_utility(row.loss_none, row.loss_latents, row.loss_text);
    rows.push_back(row);
  }
  return rows;
}

namespace {

enum Context { kNone = 0, kLatents = 1, kText = 2 };

// One decoder row to score: a target span under one context.
struct Row {
  int64_t target;  // index into the targets
  Context context;
  int64_t k;  // spans back (0 for kNone)
  C3Example example;
};

}  // namespace

ContextUtility measure_context_utility(C3Codec& codec, const std::vector<EvalPage>& documents,
                                       const ContextUtilityOptions& o) {
  if (o.span_tokens <= 0 || o.batch_size <= 0) throw UsageError("--max-span-tokens and --batch-size must be positive");
  for (int64_t k : o.spans_back)
    if (k < 1) throw UsageError("--spans-back: each number of spans must be at least 1");
  const C3Config& config = codec.model()->config();
  const C3Prompt prompt(codec.tokenizer(), config.latent_tokens, codec.prompt().prompt_template(),
                        kContinueInstruction);
  ContextUtility out;
  std::deque<std::vector<int32_t>> spans, texts;  // stable addresses for the rows' pointers
  std::vector<TargetLosses> sums;
  std::vector<Row> rows;
  for (const auto& doc : documents) {
    if (o.limit > 0 && out.documents >= o.limit) break;
    ++out.documents;
    const size_t first = spans.size();
    for (auto& span : cut_spans(doc.text, codec.tokenizer(), o.span_tokens)) spans.push_back(std::move(span.ids));
    const auto count = static_cast<int64_t>(spans.size() - first);
    out.spans += count;
    for (size_t j = first; j < spans.size(); ++j) out.span_tokens += static_cast<int64_t>(spans[j].size());
    for (int64_t i = 1; i < count; ++i) {
      const auto t = static_cast<int64_t>(sums.size());
      const std::vector<int32_t>* target = &spans[first + i];
      sums.push_back({doc.id, i, static_cast<int64_t>(target->size())});
      rows.push_back({t, kNone, 0, {&prompt, {}, target, nullptr, false}});
      for (int64_t k : o.spans_back) {
        if (k > i) continue;
        C3Example latents{&prompt, {}, target, nullptr, false};
        std::vector<int32_t> text;
        for (int64_t j = i - k; j < i; ++j) {
          latents.context.push_back(&spans[first + j]);
          text.insert(text.end(), spans[first + j].begin(), spans[first + j].end());
        }
        texts.push_back(std::move(text));
        rows.push_back({t, kLatents, k, latents});
        rows.push_back({t, kText, k, {&prompt, {}, target, &texts.back(), false}});
      }
    }
  }
  if (sums.empty())
    throw UsageError("no document is long enough for two spans of " + std::to_string(o.span_tokens) +
                     " tokens: nothing to continue (lower --max-span-tokens)");
  spdlog::info(
      "{} documents cut into {} spans of at most {} tokens ({} latents each): {} spans to continue, {} "
      "decoder rows",
      out.documents, out.spans, o.span_tokens, config.latent_tokens, sums.size(), rows.size());

  torch::NoGradGuard no_grad;
  JobProgress progress("scoring", static_cast<int64_t>(rows.size()), o.progress, "rows");
  int64_t tokens = 0;
  for (size_t start = 0; start < rows.size(); start += static_cast<size_t>(o.batch_size)) {
    throw_if_stopped(o.stop);
    const size_t end = std::min(rows.size(), start + static_cast<size_t>(o.batch_size));
    std::vector<C3Example> batch;
    for (size_t r = start; r < end; ++r) batch.push_back(rows[r].example);
    const C3LossOutput loss = c3_loss(codec.model(), make_c3_batch(batch).to(codec.model()->device()), 0);
    const at::Tensor row_loss = loss.row_loss_sum.cpu().to(at::kDouble);
    for (size_t r = start; r < end; ++r) {
      const double value = row_loss[static_cast<int64_t>(r - start)].item<double>();
      TargetLosses& s = sums[rows[r].target];
      if (rows[r].context == kNone)
        s.none = value;
      else
        (rows[r].context == kLatents ? s.by_k[rows[r].k].first : s.by_k[rows[r].k].second) = value;
    }
    tokens += loss.tokens;
    progress.update(static_cast<int64_t>(end), tokens);
  }
  progress.clear();

  out.rows = utility_rows(sums, o.spans_back);
  out.targets = std::move(sums);
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
  md += "| spans back | targets | tokens | loss, no context | loss, latents | loss, text | utility |\n";
  md += "|---:|---:|---:|---:|---:|---:|---:|\n";
  auto cell = [](const json& v) { return v.is_number() ? fmt::format("{:.4f}", v.get<double>()) : std::string("-"); };
  for (const auto& row : summary["rows"])
    md += fmt::format("| {} | {} | {} | {} | {} | {} | {} |\n", row["spans_back"].get<int64_t>(),
                      row["targets"].get<int64_t>(), row["tokens"].get<int64_t>(), cell(row["loss_none"]),
                      cell(row["loss_latents"]), cell(row["loss_text"]), cell(row["utility"]));
  md += "\nA utility of `-` means the text itself did not lower the loss (no utility is defined there).\n";
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

std::vector<fs::path> context_utility_outputs(const fs::path& output) {
  return {output / "targets.jsonl", output / "report.md", output / "context_utility.svg", output / "context_losses.svg",
          output / "summary.json"};
}

void check_context_utility_output(const fs::path& output, bool force) {
  check_eval_folder(output, context_utility_outputs(output), has_intact_record, force);
}

json run_context_utility(C3Codec& codec, const std::vector<EvalPage>& documents, const ContextUtilityRun& run) {
  const auto start = std::chrono::steady_clock::now();
  const ContextUtility result = measure_context_utility(codec, documents, run.options);
  const int64_t n = codec.model()->config().latent_tokens;
  json rows = json::array();
  for (const auto& row : result.rows) rows.push_back(row.to_json());
  std::string all;
  for (const auto& d : documents) all += d.id + '\0' + d.text + '\0';
  json summary{{"c3_version", C3_VERSION},
               {"task", "continue"},
               {"model", codec.folder().string()},
               {"model_fingerprint", codec.fingerprint()},
               {"latent_tokens", n},
               {"data", run.data},
               {"documents_sha256", sha256_hex(all)},
               {"documents", result.documents},
               {"spans", result.spans},
               {"span_tokens", run.options.span_tokens},
               {"mean_ratio", static_cast<double>(result.span_tokens) / static_cast<double>(result.spans * n)},
               {"instruction", kContinueInstruction},
               {"spans_back", run.options.spans_back},
               {"dtype", scalar_type_name(codec.model()->dtype())},
               {"device", run.device},
               {"rows", rows}};
  summary["seconds"] = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  // Checked again (before the model loaded too): files may have appeared since.
  claim_outputs(context_utility_outputs(run.output), has_intact_record, run.force);
  make_folder(run.output);
  const std::string key = sha256_hex(summary.dump());
  std::string lines;
  for (const auto& t : result.targets) lines += t.to_json().dump() + "\n";
  write_recorded_output(run.output / "targets.jsonl", lines, key);
  write_recorded_output(run.output / "report.md", report_markdown(summary), key);
  write_recorded_output(run.output / "context_utility.svg", utility_svg(summary), key);
  write_recorded_output(run.output / "context_losses.svg", losses_svg(summary), key);
  write_recorded_output(run.output / "summary.json", summary.dump(2) + "\n", key);  // last: its presence means finished
  return summary;
}

}  // namespace c3
