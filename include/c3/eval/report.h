// What `c3 eval` writes: summary.json (means by condition and bucket, with the position curve),
// report.md (the tables next to the published numbers) and two SVG plots.
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "c3/eval/eval_data.h"
#include "c3/eval/evaluator.h"

namespace c3 {

// The published numbers the report compares with (spec section 6): DeepSeek-OCR on Fox by bucket
// (64 and 100 vision tokens) and C3's headline results.
nlohmann::json published_results();

// Means per condition: "overall" and per bucket (pages, mean ratio, every metric, position curve).
// `run` (model, data, settings, timing) is copied in as it is.
nlohmann::json summarize(const std::vector<PageResult>& pages, const Buckets& buckets,
                         const std::vector<std::string>& conditions, const nlohmann::json& run);

std::string report_markdown(const nlohmann::json& summary);
// Precision against compression ratio: every page, the bucket means, and the published points.
std::string precision_plot_svg(const nlohmann::json& summary, const std::vector<PageResult>& pages);
// Share of characters reproduced per tenth of the text, one line per bucket (and per control).
std::string position_plot_svg(const nlohmann::json& summary);

}  // namespace c3
