// `c3 eval --task continue`: what the latents of the spans before a span tell the decoder about
// it. Each document is cut into spans as compress cuts it; for every span after the first, the
// decoder (told "Continue the text: ") scores the span's tokens given
//   (a) no context, (b) the latents of the previous k spans, (c) the same k spans as plain tokens,
// for each k of spans_back. The context utility per k is
//   (L_none - L_latents) / (L_none - L_text),
// 1 when the latents help as much as the text itself, 0 when they do not help at all: does
// compressed context serve like real context, and how far back does it reach. Under each context
// the decoder also continues greedily, and the continuation's word precision against the real span
// says the same in words. Finished targets are journaled (targets.partial.jsonl): a killed run
// resumes where it stopped.
#pragma once

#include <cmath>
#include <cstdint>
#include <filesystem>
#include <functional>
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
  // Greedy continuation of each target under each context, scored by word precision against it:
  // -1 as many tokens as the target has, 0 none (losses only), N at most N tokens.
  int64_t continuation_tokens = -1;
  int64_t no_repeat_ngram_size = 20;
  bool progress = true;
  const StopSignals* stop = nullptr;
};

// Per k: the targets (spans with at least k spans before them), their tokens, and the mean
// per-token losses over the same targets under each context.
struct UtilityRow {
  int64_t spans_back = 0, targets = 0, tokens = 0;
  double loss_none = 0, loss_latents = 0, loss_text = 0, utility = 0;
  // Mean word precision of the targets' greedy continuations (NaN: none generated).
  double precision_none = std::nan(""), precision_latents = std::nan(""), precision_text = std::nan("");
  // The control: mean loss given the latents of k spans of another document (NaN unless every
  // target has it), and the content utility (other - latents) / (none - text): what the latents
  // give beyond what any latents give.
  double loss_other = std::nan(""), content_utility = std::nan("");
  nlohmann::json to_json() const;
};

// One target span's loss sums (nats, over its tokens): without context, and per k with the
// latents and with the text of the k spans before it (only for k no larger than its index); and
// the word precision of the greedy continuation under each (NaN: not generated).
struct TargetLosses {
  std::string document;
  int64_t span = 0, tokens = 0;
  double none = 0;
  std::map<int64_t, std::pair<double, double>> by_k;  // k -> (latents, text)
  double precision_none = std::nan("");
  std::map<int64_t, std::pair<double, double>> precision_by_k;  // k -> (latents, text)
  std::map<int64_t, double> other_by_k;  // k -> loss sum given another document's latents (the control)
  std::string document_sha256;           // of the document's text (resuming)
  std::string control_sha256;            // of the texts of the documents its controls came from (resuming)
  nlohmann::json to_json() const;
  static TargetLosses from_json(const nlohmann::json& j);  // what to_json wrote
};

// Per k of spans_back that some target reaches: the targets that reach it, their mean per-token
// losses over all their tokens, and the utility of those means.
std::vector<UtilityRow> utility_rows(const std::vector<TargetLosses>& targets, const std::vector<int64_t>& spans_back);

struct ContextUtility {
  std::vector<UtilityRow> rows;                       // one per k that some target reaches
  int64_t documents = 0, spans = 0, span_tokens = 0;  // span_tokens: of all spans together
  int64_t resumed = 0;                                // targets taken from `done`
  std::vector<TargetLosses> targets;
};

// Scores every target that `done` lacks (matched by document, span and the document's digest);
// `on_targets` receives the targets each batch finishes, in order. `targets` holds all of them.
ContextUtility measure_context_utility(C3Codec& codec, const std::vector<EvalPage>& documents,
                                       const ContextUtilityOptions& options, const std::vector<TargetLosses>& done = {},
                                       const std::function<void(const std::vector<TargetLosses>&)>& on_targets = {});

struct ContextUtilityRun {
  std::filesystem::path output;
  std::string data, device;  // recorded
  bool force = false;
  ContextUtilityOptions options;
};

// What it writes into `output`: targets.jsonl, report.md, the two plots, summary.json (last); and,
// while it runs, its journal.
std::vector<std::filesystem::path> context_utility_outputs(const std::filesystem::path& output);
// Refuses, before a model is loaded, what check_eval_output refuses for eval's outputs.
void check_context_utility_output(const std::filesystem::path& output, bool force);

// Measures and writes the outputs (each with its record, as eval's); returns the summary. The
// folder is checked as check_eval_output checks eval's.
nlohmann::json run_context_utility(C3Codec& codec, const std::vector<EvalPage>& documents,
                                   const ContextUtilityRun& run);

}  // namespace c3
