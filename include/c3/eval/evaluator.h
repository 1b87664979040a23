// `c3 eval` with a model: select benchmark pages by text-token count, compress and reconstruct
// each in length-sorted batches (whole, as one span of N latents; a page longer than the span limit
// is cut into spans as compress cuts it, and its reconstruction joined as reconstruct joins it; all through C3Codec),
// and score every page with the Fox scorer and the position curve, under each requested control condition.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "c3/eval/eval_data.h"
#include "c3/eval/fox_metrics.h"
#include "c3/eval/perturb.h"
#include "c3/infer/codec.h"
#include "c3/infer/generate.h"
#include "c3/tokenizer/tokenizer.h"

namespace c3 {

struct SelectedPage {
  EvalPage page;
  std::vector<int32_t> ids;  // the text's tokens with the model's tokenizer
  int64_t tokens = 0;        // ids.size()
  int bucket = -1;
};
// The pages whose token count falls in the buckets, in file order (at most `limit`; 0: all).
std::vector<SelectedPage> select_pages(const std::vector<EvalPage>& pages, const Tokenizer& tokenizer,
                                       const Buckets& buckets, int64_t limit);

struct EvalOptions {
  Buckets buckets;
  std::vector<Perturbation> conditions{Perturbation::kNone};
  uint64_t seed = 0;        // of the perturbations
  int64_t batch_size = 8;   // spans (pages) decoded together
  int64_t span_tokens = 0;  // a page with more text tokens is cut into spans of at most this many (0: never)
  GenerateOptions generate;
  bool progress = true;
  int threads = 1;  // for scoring
};

struct PageResult {
  std::string id, condition;
  int64_t page_tokens = 0;  // the original page's text tokens: what selects and buckets it
  int64_t text_tokens = 0;  // of the text compressed (differs from page_tokens under a perturbation)
  int bucket = -1;
  std::string bucket_label;
  int64_t spans = 1;  // the page was cut into this many spans (each compressed into N latents)
  double ratio = 0;   // text_tokens / all its latent tokens (N x spans)
  int64_t generated_tokens = 0;
  PageScores scores;
  std::vector<double> position_curve;  // per tenth of the text; NaN (null in JSON) where empty
  std::string text;                    // what was compressed (the page, or its perturbation)
  std::string page_sha256;             // of the page's text: a resumed run keeps this result only for the same page
  std::string reconstruction;
  nlohmann::json to_json() const;
  static PageResult from_json(const nlohmann::json& j);  // what to_json wrote (resuming a run)
};

// The seed a page's perturbation uses: options.seed mixed with the page id.
uint64_t page_seed(uint64_t seed, const std::string& id);

// Evaluates every (condition, page) pair that `done` lacks; returns all results (done ones
// included) ordered by condition, then page. `on_batch` receives each batch's new results as
// soon as they exist (the CLI logs them, so an interrupted run resumes).
std::vector<PageResult> evaluate(C3Codec& codec, const std::vector<SelectedPage>& pages, const EvalOptions& options,
                                 const std::vector<PageResult>& done,
                                 const std::function<void(const std::vector<PageResult>&)>& on_batch);

}  // namespace c3
