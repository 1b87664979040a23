#include "c3/eval/report.h"

#include <fmt/format.h>

#include <cmath>
#include <limits>

#include "svg_plot.h"

using json = nlohmann::json;

namespace c3 {
namespace {

const char* const kColors[] = {"#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22"};

// Mean per bin over curves, ignoring NaN (null) entries.
json mean_curve(const std::vector<const PageResult*>& pages) {
  json curve = json::array();
  if (pages.empty()) return curve;
  const size_t bins = pages.front()->position_curve.size();
  for (size_t b = 0; b < bins; ++b) {
    double sum = 0;
    int64_t n = 0;
    for (const auto* p : pages)
      if (b < p->position_curve.size() && !std::isnan(p->position_curve[b])) sum += p->position_curve[b], ++n;
    curve.push_back(n ? json(sum / static_cast<double>(n)) : json(nullptr));
  }
  return curve;
}

json group_summary(const std::vector<const PageResult*>& pages) {
  ScoreMeans means;
  double ratio = 0;
  int64_t generated = 0;
  for (const auto* p : pages) means.add(p->scores), ratio += p->ratio, generated += p->generated_tokens;
  json j = means.to_json();
  j["mean_ratio"] = pages.empty() ? 0.0 : ratio / static_cast<double>(pages.size());
  j["generated_tokens"] = generated;
  j["position_curve"] = mean_curve(pages);
  return j;
}

std::string percent(const json& v) { return v.is_number() ? fmt::format("{:.1f}%", 100.0 * v.get<double>()) : "-"; }

std::string metrics_table(const json& condition) {
  std::string md =
      "| text tokens | pages | mean ratio | precision | 1 - edit distance | recall | F1 | BLEU | exact match |\n"
      "|---|---:|---:|---:|---:|---:|---:|---:|---:|\n";
  auto row = [&](const std::string& label, const json& g) {
    md += fmt::format("| {} | {} | {:.1f}x | {} | {} | {} | {} | {:.3f} | {} |\n", label, g["pages"].get<int64_t>(),
                      g["mean_ratio"].get<double>(), percent(g["precision"]), percent(g["one_minus_edit_distance"]),
                      percent(g["recall"]), percent(g["f1"]), g["bleu"].get<double>(), percent(g["exact_match"]));
  };
  for (const auto& b : condition["buckets"]) row(b["bucket"].get<std::string>(), b);
  row("**all**", condition["overall"]);
  return md;
}

}  // namespace

json published_results() {
  // Spec section 6: DeepSeek-OCR on Fox English pages (its own tokenizer), precision @ ratio.
  const json rows = json::array({
      {{"bucket", "600-700"}, {"pages", 7}, {"v64", {0.965, 10.5}}, {"v100", {0.985, 6.7}}},
      {{"bucket", "700-800"}, {"pages", 28}, {"v64", {0.938, 11.8}}, {"v100", {0.973, 7.5}}},
      {{"bucket", "800-900"}, {"pages", 28}, {"v64", {0.838, 13.2}}, {"v100", {0.968, 8.5}}},
      {{"bucket", "900-1000"}, {"pages", 14}, {"v64", {0.859, 15.1}}, {"v100", {0.968, 9.7}}},
      {{"bucket", "1000-1100"}, {"pages", 11}, {"v64", {0.793, 16.5}}, {"v100", {0.915, 10.6}}},
      {{"bucket", "1100-1200"}, {"pages", 8}, {"v64", {0.764, 17.7}}, {"v100", {0.898, 11.3}}},
      {{"bucket", "1200-1300"}, {"pages", 4}, {"v64", {0.591, 19.7}}, {"v100", {0.871, 12.6}}},
  });
  return {
      {"deepseek_ocr", rows},
      {"c3_paper", json::array({{{"precision", 0.984}, {"ratio", 20.0}}, {{"precision", 0.933}, {"ratio", 40.0}}})}};
}

json summarize(const std::vector<PageResult>& pages, const Buckets& buckets, const std::vector<std::string>& conditions,
               const json& run) {
  json summary = run;
  summary["selection"]["min_tokens"] = buckets.min_tokens;
  summary["selection"]["max_tokens"] = buckets.max_tokens;
  summary["selection"]["bucket_width"] = buckets.width;
  summary["conditions"] = json::object();
  for (const auto& condition : conditions) {
    std::vector<const PageResult*> all;
    for (const auto& p : pages)
      if (p.condition == condition) all.push_back(&p);
    json c = {{"overall", group_summary(all)}, {"buckets", json::array()}};
    for (int b = 0; b < buckets.count(); ++b) {
      std::vector<const PageResult*> in;
      for (const auto* p : all)
        if (p->bucket_label == buckets.label(b)) in.push_back(p);
      if (in.empty()) continue;
      json g = group_summary(in);
      g["bucket"] = buckets.label(b);
      c["buckets"].push_back(g);
    }
    summary["conditions"][condition] = c;
  }
  summary["published"] = published_results();
  summary["metric_notes"] =
      "precision = |set(GT words) & set(output words)| / |set(GT words)|, what the official Fox script prints as "
      "precision (its arguments are swapped) and the paper quotes; recall, F1 and BLEU in the same swapped order; "
      "edit_distance = character Levenshtein / longer length; means over pages; METEOR not computed";
  return summary;
}

namespace {

std::string run_section(const json& s) {
  std::string md = fmt::format("- model: `{}` ({} latent tokens, fingerprint `{}`)\n", s.value("model", ""),
                               s.value("latent_tokens", 0), s.value("model_fingerprint", "").substr(0, 12));
  const json& sel = s["selection"];
  md += fmt::format(
      "- data: `{}`: {} of {} pages have {}-{} text tokens (counted with the model's tokenizer), "
      "in buckets of {}\n",
      s.value("data", ""), sel.value("pages_selected", 0), sel.value("pages_read", 0), sel["min_tokens"].get<int64_t>(),
      sel["max_tokens"].get<int64_t>(), sel["bucket_width"].get<int64_t>());
  if (s.contains("generation"))
    md += fmt::format("- generation: greedy, no-repeat n-gram {}, at most {} new tokens, batches of {}, {} on {}\n",
                      s["generation"].value("no_repeat_ngram", 0), s["generation"].value("max_new_tokens", 0),
                      s["generation"].value("batch_size", 0), s["generation"].value("dtype", ""),
                      s["generation"].value("device", ""));
  if (s.contains("generation") && s["generation"].value("pages_cut_into_spans", int64_t{0}) > 0)
    md += fmt::format(
        "- spans: {} pages longer than {} text tokens were cut into spans of at most that many, each "
        "compressed into the model's latents; their ratio counts all of them\n",
        s["generation"].value("pages_cut_into_spans", int64_t{0}),
        s["generation"].value("max_span_tokens", int64_t{0}));
  if (s.contains("seconds"))
    md += fmt::format("- {:.1f} s, {} tokens generated; c3 {}\n", s["seconds"].get<double>(),
                      s.value("generated_tokens", int64_t{0}), s.value("c3_version", ""));
  return md;
}

std::string conditions_section(const json& s) {
  std::string md;
  for (const auto& [name, condition] : s["conditions"].items()) {
    md += name == "none"
              ? "\n## Reconstruction by text length\n\n"
              : fmt::format("\n## Control: {} (same pages, {})\n\n", name,
                            name == "shuffle-words" ? "words shuffled" : "words replaced by random characters");
    md += metrics_table(condition);
  }
  return md;
}

std::string published_section(const json& s) {
  const json& published = s["published"];
  std::string md =
      "\n## Next to the published numbers\n\nPrecision @ compression ratio. DeepSeek-OCR counted text "
      "tokens with its own tokenizer, c3 with the model's.\n\n";
  std::vector<std::string> names;
  for (const auto& [name, condition] : s["conditions"].items()) names.push_back(name);
  md += "| text tokens | pages (Fox) |";
  for (const auto& n : names) md += " this model" + (n == "none" ? std::string() : " (" + n + ")") + " |";
  md += " DeepSeek-OCR, 64 vision tokens | DeepSeek-OCR, 100 vision tokens |\n|---|---:|";
  for (size_t i = 0; i < names.size(); ++i) md += "---:|";
  md += "---:|---:|\n";
  for (const auto& row : published["deepseek_ocr"]) {
    const std::string bucket = row["bucket"].get<std::string>();
    md += fmt::format("| {} | {} |", bucket, row["pages"].get<int>());
    for (const auto& n : names) {
      std::string cell = "-";
      for (const auto& b : s["conditions"][n]["buckets"])
        if (b["bucket"] == bucket)
          cell = fmt::format("{} @ {:.1f}x ({} pages)", percent(b["precision"]), b["mean_ratio"].get<double>(),
                             b["pages"].get<int64_t>());
      md += " " + cell + " |";
    }
    md += fmt::format(" {} @ {}x | {} @ {}x |\n", percent(row["v64"][0]), row["v64"][1].get<double>(),
                      percent(row["v100"][0]), row["v100"][1].get<double>());
  }
  return md + "\nC3 (paper, 32 latents and more): 98.4% at about 20x and 93.3% at about 40x.\n";
}

std::string position_section(const json& s) {
  std::string md = "\n## Where the errors are: characters reproduced per tenth of the text\n\n| text tokens |";
  for (int t = 1; t <= 10; ++t) md += fmt::format(" {}/10 |", t);
  md += "\n|---|";
  for (int t = 1; t <= 10; ++t) md += "---:|";
  md += "\n";
  for (const auto& [name, condition] : s["conditions"].items()) {
    auto row = [&, &name = name](const std::string& label, const json& g) {
      md += "| " + label + (name == "none" ? "" : " (" + name + ")") + " |";
      for (const auto& v : g["position_curve"]) md += " " + percent(v) + " |";
      md += "\n";
    };
    for (const auto& b : condition["buckets"]) row(b["bucket"].get<std::string>(), b);
    row("all", condition["overall"]);
  }
  return md;
}

constexpr const char* kMetricNotes =
    "\n## How the numbers are computed\n\n"
    "- **precision** (the paper's \"precision\", as the official Fox script prints it): the share of the ground "
    "truth's distinct whitespace-separated words that appear in the output. The script passes its arguments "
    "swapped, so its \"recall\" is the share of the output's distinct words found in the ground truth; F1 is "
    "NLTK's f_measure of the two.\n"
    "- **BLEU**: NLTK's sentence BLEU in the same swapped order (the ground truth is the hypothesis), 4-grams, "
    "uniform weights, no smoothing.\n"
    "- **1 - edit distance**: one minus the character Levenshtein distance over the longer length.\n"
    "- **position curve**: a minimum-edit character alignment of output and ground truth; per tenth of the "
    "ground truth, the share of its characters aligned to the same character.\n"
    "- Means are over pages. METEOR is not computed (it needs WordNet and NLTK's stemmer to match). Pages with "
    "Chinese characters would be segmented per character instead of with jieba, and are counted in "
    "`chinese_pages_segmented_by_character`.\n";

}  // namespace

std::string report_markdown(const json& s) {
  return "# c3 eval\n\n" + run_section(s) + conditions_section(s) + published_section(s) + position_section(s) +
         "\n![precision against compression ratio](precision_vs_ratio.svg)\n\n![position curve](position_curve.svg)\n" +
         kMetricNotes;
}

std::string precision_plot_svg(const json& s, const std::vector<PageResult>& pages) {
  SvgPlot plot("Reconstruction precision against compression ratio", "compression ratio (text tokens / latent tokens)",
               "precision (%)");
  plot.set_y_range(0, 100);
  int color = 0;
  for (const auto& [name, condition] : s["conditions"].items()) {
    SvgPlot::Points points, means;
    for (const auto& p : pages)
      if (p.condition == name) points.emplace_back(p.ratio, 100.0 * p.scores.precision);
    for (const auto& b : condition["buckets"])
      means.emplace_back(b["mean_ratio"].get<double>(), 100.0 * b["precision"].get<double>());
    const std::string c = kColors[color++ % 8];
    plot.add_points("pages" + (name == "none" ? std::string() : " (" + name + ")"), c, points);
    plot.add_line("bucket means" + (name == "none" ? std::string() : " (" + name + ")"), c, means);
  }
  SvgPlot::Points v64, v100, paper;
  for (const auto& row : s["published"]["deepseek_ocr"]) {
    v64.emplace_back(row["v64"][1].get<double>(), 100.0 * row["v64"][0].get<double>());
    v100.emplace_back(row["v100"][1].get<double>(), 100.0 * row["v100"][0].get<double>());
  }
  for (const auto& p : s["published"]["c3_paper"])
    paper.emplace_back(p["ratio"].get<double>(), 100.0 * p["precision"].get<double>());
  plot.add_points("DeepSeek-OCR, 64 tokens", "#ff7f0e", v64, true);
  plot.add_points("DeepSeek-OCR, 100 tokens", "#2ca02c", v100, true);
  plot.add_points("C3 paper", "#000000", paper, true);
  return plot.render();
}

std::string position_plot_svg(const json& s) {
  SvgPlot plot("Characters reproduced along the text", "tenth of the ground truth", "characters reproduced (%)");
  plot.set_x_range(0.5, 10.5);
  plot.set_y_range(0, 100);
  int color = 0;
  for (const auto& [name, condition] : s["conditions"].items()) {
    auto add = [&](const std::string& label, const json& g, bool dashed) {
      SvgPlot::Points points;
      int t = 1;
      for (const auto& v : g["position_curve"]) {
        points.emplace_back(t++, v.is_number() ? 100.0 * v.get<double>() : std::numeric_limits<double>::quiet_NaN());
      }
      plot.add_line(label, kColors[color++ % 8], points, dashed);
    };
    if (name == "none") {
      for (const auto& b : condition["buckets"]) add(b["bucket"].get<std::string>() + " tokens", b, false);
    } else {
      add("all (" + name + ")", condition["overall"], true);
    }
  }
  return plot.render();
}

}  // namespace c3
