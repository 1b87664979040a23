// `c3 eval --task continue`: what the latents of the spans before a span tell the decoder about
// it. Each document is cut into spans as compress cuts it; for every span after the first, the
// decoder (told "Continue the text: ") scores the span's tokens given
//   (a) no context, (b) the latents of the previous k spans, (c) the same k spans as plain tokens,
// for each k of spans_back. The context utility per k is
//   (L_none - L_latents) / (L_none - L_text),
// 1 when the latents help as much as the text itself, 0 when they do not help at all: does
// compressed context serve like real context, and how far back does it reach.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "c3/eval/eval_data.h"
#include "c3/infer/codec.h"
#include "c3/util/stop_signals.h"

namespace c3 {

// (none - latents) / (none - text); NaN when the text does not lower the loss (text >= none),
// where no utility is defined.
double context_utility(double loss_none, double loss_latents, double loss_text);

struct ContextUtilityOptions {
  int64_t span_tokens = 0;  // spans of at most this many text tokens (> 0)
  std::vector<int64_t> spans_back{1, 2, 4, 8};
  int64_t batch_size = 8;  // decoder rows scored together
  int64_t limit = 0;       // at most this many documents (0: all)
  bool progress = true;
  const StopSignals* stop = nullptr;
};

// Per k: the targets (spans with at least k spans before them), their tokens, and the mean
// per-token losses over the same targets under each context.
struct UtilityRow {
  int64_t spans_back = 0, targets = 0, tokens = 0;
  double loss_none = 0, loss_latents = 0, loss_text = 0, utility = 0;
  nlohmann::json to_json() const;
};

// One target span's loss sums (nats, over its tokens): without context, and per k with the
// latents and with the text of the k spans before it (only for k no larger than its index).
struct TargetLosses {
  std::string document;
  int64_t span = 0, tokens = 0;
  double none = 0;
  std::map<int64_t, std::pair<double, double>> by_k;  // k -> (latents, text)
  nlohmann::json to_json() const;
};

// Per k of spans_back that some target reaches: the targets that reach it, their mean per-token
// losses over all their tokens, and the utility of those means.
std::vector<UtilityRow> utility_rows(const std::vector<TargetLosses>& targets, const std::vector<int64_t>& spans_back);

struct ContextUtility {
  std::vector<UtilityRow> rows;                       // one per k that some target reaches
  int64_t documents = 0, spans = 0, span_tokens = 0;  // span_tokens: of all spans together
  std::vector<TargetLosses> targets;
};

ContextUtility measure_context_utility(C3Codec& codec, const std::vector<EvalPage>& documents,
                                       const ContextUtilityOptions& options);

struct ContextUtilityRun {
  std::filesystem::path output;
  std::string data, device;  // recorded
  bool force = false;
  ContextUtilityOptions options;
};

// What it writes into `output`: targets.jsonl, report.md, context_utility.svg, summary.json (last).
std::vector<std::filesystem::path> context_utility_outputs(const std::filesystem::path& output);
// Refuses, before a model is loaded, what check_eval_output refuses for eval's outputs.
void check_context_utility_output(const std::filesystem::path& output, bool force);

// Measures and writes the outputs (each with its record, as eval's); returns the summary. The
// folder is checked as check_eval_output checks eval's.
nlohmann::json run_context_utility(C3Codec& codec, const std::vector<EvalPage>& documents,
                                   const ContextUtilityRun& run);

}  // namespace c3
