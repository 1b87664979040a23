#include "c3/eval/evaluator.h"

#include "c3/util/sha256.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>

#include "c3/eval/position_curve.h"
#include "c3/infer/codec.h"
#include "c3/tokenizer/unicode.h"
#include "c3/util/parallel.h"
#include "c3/util/status_line.h"
#include "c3/util/stop_signals.h"

using json = nlohmann::json;

namespace c3 {

std::vector<SelectedPage> select_pages(const std::vector<EvalPage>& pages, const Tokenizer& tokenizer,
                                       const Buckets& buckets, int64_t limit) {
  std::vector<SelectedPage> selected;
  for (const auto& page : pages) {
    if (limit > 0 && static_cast<int64_t>(selected.size()) >= limit) break;
    std::vector<int32_t> ids = tokenizer.encode_text(page.text);
    const auto tokens = static_cast<int64_t>(ids.size());
    const int bucket = buckets.index(tokens);
    if (bucket >= 0) selected.push_back({page, std::move(ids), tokens, bucket});
  }
  return selected;
}

uint64_t page_seed(uint64_t seed, const std::string& id) {
  uint64_t h = 0xcbf29ce484222325ull;  // FNV-1a
  for (unsigned char c : id) h = (h ^ c) * 0x100000001b3ull;
  return seed ^ h;
}

json PageResult::to_json() const {
  json curve = json::array();
  for (double v : position_curve) curve.push_back(std::isnan(v) ? json(nullptr) : json(v));
  json j = {{"id", id},
            {"condition", condition},
            {"page_tokens", page_tokens},
            {"text_tokens", text_tokens},
            {"bucket", bucket_label},
            {"spans", spans},
            {"ratio", ratio},
            {"generated_tokens", generated_tokens}};
  j.update(scores.to_json());
  j["position_curve"] = curve;
  if (condition != "none") j["text"] = text;
  j["reconstruction"] = reconstruction;
  j["page_sha256"] = page_sha256;
  return j;
}

PageResult PageResult::from_json(const json& j) {
  PageResult r;
  r.id = j.at("id").get<std::string>();
  r.condition = j.at("condition").get<std::string>();
  r.page_tokens = j.at("page_tokens").get<int64_t>();
  r.text_tokens = j.at("text_tokens").get<int64_t>();
  r.bucket_label = j.at("bucket").get<std::string>();
  r.spans = j.value("spans", int64_t{1});
  r.ratio = j.at("ratio").get<double>();
  r.generated_tokens = j.at("generated_tokens").get<int64_t>();
  r.scores.precision = j.at("precision").get<double>();
  r.scores.recall = j.at("recall").get<double>();
  r.scores.f1 = j.at("f1").get<double>();
  r.scores.bleu = j.at("bleu").get<double>();
  r.scores.edit_distance = j.at("edit_distance").get<double>();
  r.scores.exact_match = j.at("exact_match").get<bool>();
  r.scores.reference_words = j.at("reference_words").get<int64_t>();
  r.scores.output_words = j.at("output_words").get<int64_t>();
  r.scores.chinese = j.at("chinese_segmented_by_character").get<bool>();
  for (const auto& v : j.at("position_curve"))
    r.position_curve.push_back(v.is_null() ? std::numeric_limits<double>::quiet_NaN() : v.get<double>());
  r.text = j.value("text", "");
  r.reconstruction = j.at("reconstruction").get<std::string>();
  r.page_sha256 = j.value("page_sha256", "");
  return r;
}

namespace {

// A page (under one condition) still to evaluate, as one or more spans.
struct Item {
  PageResult result;
  std::vector<Span> spans;
  std::vector<std::string> outputs;  // per span
  size_t pending = 0;                // spans not decoded yet
};

Item plan_item(const SelectedPage& p, Perturbation condition, const Tokenizer& tokenizer, const EvalOptions& options,
               int64_t latents) {
  Item item;
  PageResult& r = item.result;
  r.id = p.page.id, r.condition = perturbation_name(condition), r.page_tokens = p.tokens;
  r.bucket = p.bucket, r.bucket_label = options.buckets.label(p.bucket);
  r.text = perturb(p.page.text, condition, page_seed(options.seed, p.page.id));
  r.page_sha256 = sha256_hex(p.page.text);
  std::vector<int32_t> ids = condition == Perturbation::kNone ? p.ids : tokenizer.encode_text(r.text);
  r.text_tokens = static_cast<int64_t>(ids.size());
  if (options.span_tokens > 0 && r.text_tokens > options.span_tokens) {
    item.spans = cut_spans(r.text, tokenizer, options.span_tokens);
  } else {
    item.spans.resize(1);
    item.spans[0].ids = std::move(ids);
  }
  r.spans = static_cast<int64_t>(item.spans.size());
  r.ratio = static_cast<double>(r.text_tokens) / static_cast<double>(latents * r.spans);
  item.outputs.resize(item.spans.size());
  item.pending = item.spans.size();
  return item;
}

// Compresses and reconstructs the spans order[start, end); returns the items whose last span
// this batch decoded.
std::vector<size_t> decode_batch(C3Codec& codec, const EvalOptions& options, std::vector<Item>& todo,
                                 const std::vector<std::pair<size_t, size_t>>& order, size_t start, size_t end) {
  std::vector<const std::vector<int32_t>*> texts;
  for (size_t k = start; k < end; ++k) texts.push_back(&todo[order[k].first].spans[order[k].second].ids);
  const auto ids = codec.generate(codec.compress(texts), options.generate);
  std::vector<size_t> completed;
  for (size_t k = start; k < end; ++k) {
    Item& item = todo[order[k].first];
    item.result.generated_tokens += static_cast<int64_t>(ids[k - start].size());
    item.outputs[order[k].second] = decode_reconstruction(codec.tokenizer(), ids[k - start]);
    if (--item.pending == 0) completed.push_back(order[k].first);
  }
  return completed;
}

// Joins a finished page's spans as reconstruct joins them, stripped as the protocol strips a
// reconstruction (which drops the page's trailing whitespace that the last joiner restores), and
// scores it; the character alignment is the slow part, so pages are scored on all threads.
void score_completed(std::vector<Item>& todo, const std::vector<size_t>& completed, int threads) {
  for (size_t i : completed) {
    Item& item = todo[i];
    std::vector<std::string> joiners;
    for (const auto& span : item.spans) joiners.push_back(span.joiner);
    item.result.reconstruction = std::string(unicode::strip_ascii_space(join_spans(item.outputs, joiners)));
  }
  parallel_for_each(static_cast<int64_t>(completed.size()), threads, [&](int64_t k) {
    PageResult& r = todo[completed[k]].result;
    r.scores = score_page(r.text, r.reconstruction);
    r.position_curve = position_curve(unicode::code_points(r.text), unicode::code_points(r.reconstruction));
  });
}

}  // namespace

std::vector<PageResult> evaluate(C3Codec& codec, const std::vector<SelectedPage>& pages, const EvalOptions& options,
                                 const std::vector<PageResult>& done,
                                 const std::function<void(const std::vector<PageResult>&)>& on_batch) {
  torch::NoGradGuard no_grad;
  std::map<std::pair<std::string, std::string>, PageResult> results;  // (condition, id)
  for (const auto& r : done) results[{r.condition, r.id}] = r;
  std::vector<Item> todo;
  for (const auto condition : options.conditions)
    for (const auto& p : pages)
      if (!results.count({perturbation_name(condition), p.page.id}))
        todo.push_back(plan_item(p, condition, codec.tokenizer(), options, codec.prompt().latent_tokens()));
  // Every span of every page, shortest first, so batches pad little.
  std::vector<size_t> counts;
  for (const Item& item : todo) counts.push_back(item.spans.size());
  const std::vector<std::pair<size_t, size_t>> order =
      order_spans(counts, [&](size_t i, size_t s) { return static_cast<int64_t>(todo[i].spans[s].ids.size()); }).spans;

  JobProgress status("eval", static_cast<int64_t>(todo.size()), options.progress, "pages");
  int64_t finished = 0, generated = 0;
  for (size_t start = 0; start < order.size(); start += static_cast<size_t>(options.batch_size)) {
    const size_t end = std::min(order.size(), start + static_cast<size_t>(options.batch_size));
    throw_if_stopped(options.generate.stop);  // (decoding checks it too, every step)
    const std::vector<size_t> completed = decode_batch(codec, options, todo, order, start, end);
    score_completed(todo, completed, options.threads);
    std::vector<PageResult> batch_results;
    for (size_t i : completed) {
      generated += todo[i].result.generated_tokens;
      batch_results.push_back(todo[i].result);
      results[{todo[i].result.condition, todo[i].result.id}] = todo[i].result;
    }
    if (!batch_results.empty()) on_batch(batch_results);
    finished += static_cast<int64_t>(completed.size());
    status.update(finished, generated);
  }
  status.clear();

  std::vector<PageResult> ordered;
  for (const auto condition : options.conditions)
    for (const auto& p : pages) {
      const auto it = results.find({perturbation_name(condition), p.page.id});
      if (it != results.end()) ordered.push_back(it->second);
    }
  return ordered;
}

}  // namespace c3
