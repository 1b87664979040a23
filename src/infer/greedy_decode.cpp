// greedy_decode (c3/infer/generate.h): the prompt in one forward, then one token per row and step.
// Per step the host bans n-grams, takes the argmax (the step's one device-to-host transfer) and
// feeds the tokens back; finished rows leave the batch; on CUDA the token-feeding step is a
// CUDA graph replay.
#include <ATen/record_function.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <limits>
#include <mutex>
#include <numeric>

#include "c3/infer/generate.h"
#include "c3/util/error.h"
#include "captured_step.h"

namespace c3 {
namespace {

// The rows' next tokens in, their [B, V] float logits out: the decoder one position further into
// the cache. Dynamic shapes: attention over the filled positions, which the cache's host-side
// length counts. Fixed shapes (KVCache::fix_shapes): no shape or host value changes between steps,
// inputs and outputs stay in the same buffers, and on CUDA the step is captured once as a graph
// (after one eager step) and replayed; when capture fails it says why once and runs eagerly.
class TokenStep {
 public:
  TokenStep(Qwen2ForCausalLM& lm, KVCache& cache, at::Tensor mask, const std::vector<int64_t>& positions, bool graph)
      : lm_(lm), cache_(cache), mask_(std::move(mask)), graph_wanted_(graph) {
    const auto device = lm_->output_embedding().device();
    const auto b = static_cast<int64_t>(positions.size());
    tokens_ = at::zeros({b, 1}, at::TensorOptions().dtype(at::kLong).device(device));
    positions_ = at::tensor(positions, at::kLong).to(device).view({b, 1});
  }

  at::Tensor run(const std::vector<int64_t>& tokens) {
    tokens_.copy_(at::tensor(tokens, at::kLong).view({-1, 1}));
    if (!cache_.fixed_shapes() || !graph_wanted_) return forward();
    if (graph_.captured()) return graph_.replay(), logits_;
    if (eager_steps_++ == 0) return forward();  // a real step, and the capture's warm-up
    const std::string why = graph_.capture([this] { logits_ = forward(); }, tokens_.device());
    if (why.empty()) return graph_.replay(), logits_;
    static std::once_flag said;
    std::call_once(said, [&] { spdlog::warn("decoding without a CUDA graph (each step launches its kernels): {}", why); });
    graph_wanted_ = false;
    return forward();
  }

  // Keeps batch rows `rows` (indices into the current batch) and drops the others.
  void keep_rows(const std::vector<int64_t>& rows) {
    const at::Tensor index = at::tensor(rows, at::kLong).to(tokens_.device());
    cache_.keep_rows(index);
    tokens_ = tokens_.index_select(0, index);
    positions_ = positions_.index_select(0, index);
    if (mask_.defined()) mask_ = mask_.index_select(0, index);
    graph_.reset(), eager_steps_ = 0;  // shapes changed: capture again
  }

  bool graph_replays() const { return graph_.captured(); }

 private:
  at::Tensor forward() {
    RECORD_USER_SCOPE("c3::token_step");  // the ops a CUDA graph replays (counted by bench_reconstruct)
    const at::Tensor embeds = lm_->embed(tokens_);
    at::Tensor hidden;
    if (cache_.fixed_shapes()) {
      hidden = lm_->model->forward(embeds, {}, positions_, &cache_);
      positions_.add_(1);
    } else {
      if (mask_.defined()) mask_ = at::cat({mask_, at::ones({mask_.size(0), 1}, mask_.options())}, 1);
      hidden = lm_->model->forward(embeds, mask_, {}, &cache_);
    }
    return lm_->logits(hidden.select(1, 0)).to(at::kFloat);
  }

  Qwen2ForCausalLM& lm_;
  KVCache& cache_;
  at::Tensor mask_;                      // dynamic shapes with padded prompts: [B, filled]
  at::Tensor tokens_, positions_;        // [B, 1]: the fed tokens; with fixed shapes, their positions
  at::Tensor logits_;                    // the captured step's output
  bool graph_wanted_;
  CapturedStep graph_;
  int64_t eager_steps_ = 0;
};

// Sets the logits of every token the n-gram rule bans for the still-running rows to -inf.
void ban_ngrams(at::Tensor& logits, const std::vector<int64_t>& rows, const std::vector<bool>& done,
                const std::vector<NoRepeatNgram>& ngrams) {
  std::vector<int64_t> ban_rows, ban_cols;
  for (size_t i = 0; i < rows.size(); ++i) {
    if (done[static_cast<size_t>(rows[i])]) continue;
    for (int32_t t : ngrams[static_cast<size_t>(rows[i])].banned())
      ban_rows.push_back(static_cast<int64_t>(i)), ban_cols.push_back(t);
  }
  if (ban_rows.empty()) return;
  logits.index_put_({at::tensor(ban_rows, at::kLong).to(logits.device()), at::tensor(ban_cols, at::kLong).to(logits.device())},
                    at::full({}, -std::numeric_limits<float>::infinity(), logits.options()));
}

// Without a cache (tests, benchmarks): the whole sequence again for every token.
std::vector<std::vector<int32_t>> decode_recomputing(Qwen2ForCausalLM& lm, at::Tensor embeds, at::Tensor mask,
                                                     const std::vector<int64_t>& last, std::vector<NoRepeatNgram>& ngrams,
                                                     int32_t stop_id, int64_t max_new_tokens) {
  const auto device = embeds.device();
  const int64_t b = embeds.size(0);
  std::vector<std::vector<int32_t>> out(static_cast<size_t>(b));
  std::vector<bool> done(static_cast<size_t>(b), false);
  std::vector<int64_t> rows(static_cast<size_t>(b));
  std::iota(rows.begin(), rows.end(), 0);
  at::Tensor at_rows = at::tensor(last, at::kLong).to(device).view({b, 1});
  for (int64_t step = 0; step < max_new_tokens; ++step) {
    at::Tensor logits = lm->logits(lm->model->forward(embeds, mask, {}, nullptr, at_rows).select(1, 0)).to(at::kFloat);
    ban_ngrams(logits, rows, done, ngrams);
    const at::Tensor next = logits.argmax(-1).to(at::kCPU);
    std::vector<int64_t> fed(static_cast<size_t>(b));
    for (int64_t r = 0; r < b; ++r) {
      const auto token = static_cast<int32_t>(next[r].item<int64_t>());
      fed[static_cast<size_t>(r)] = done[static_cast<size_t>(r)] ? stop_id : token;
      if (done[static_cast<size_t>(r)]) continue;
      if (token == stop_id) {
        done[static_cast<size_t>(r)] = true;
      } else {
        out[static_cast<size_t>(r)].push_back(token), ngrams[static_cast<size_t>(r)].append(token);
      }
    }
    if (std::all_of(done.begin(), done.end(), [](bool d) { return d; })) break;
    embeds = at::cat({embeds, lm->embed(at::tensor(fed, at::kLong).to(device).view({b, 1}))}, 1);
    if (mask.defined()) mask = at::cat({mask, at::ones({b, 1}, mask.options())}, 1);
    at_rows = at::full({b, 1}, embeds.size(1) - 1, at::kLong).to(device);
  }
  return out;
}

}  // namespace

std::vector<std::vector<int32_t>> greedy_decode(Qwen2ForCausalLM& lm, const at::Tensor& prompt_embeds,
                                                const std::vector<std::vector<int32_t>>& prompt_ids, int32_t stop_id,
                                                const GenerateOptions& options) {
  torch::NoGradGuard no_grad;
  const auto device = prompt_embeds.device();
  const int64_t b = prompt_embeds.size(0), p = prompt_embeds.size(1);
  if (static_cast<int64_t>(prompt_ids.size()) != b) throw Error("greedy_decode: one prompt_ids row per batch row");
  std::vector<int64_t> last(static_cast<size_t>(b));  // each row's last prompt position: its logits give the first token
  std::vector<NoRepeatNgram> ngrams(static_cast<size_t>(b), NoRepeatNgram(options.no_repeat_ngram_size));
  for (int64_t r = 0; r < b; ++r) {
    const auto length = static_cast<int64_t>(prompt_ids[static_cast<size_t>(r)].size());
    if (length < 1 || length > p) throw Error("greedy_decode: a prompt is empty or longer than the embeddings");
    last[static_cast<size_t>(r)] = length - 1;
    for (int32_t id : prompt_ids[static_cast<size_t>(r)]) ngrams[static_cast<size_t>(r)].append(id);
  }
  at::Tensor mask;  // [B, P]: only when prompts differ in length (a cache of unequal rows needs it)
  if (std::any_of(last.begin(), last.end(), [&](int64_t l) { return l != p - 1; })) {
    mask = at::zeros({b, p}, at::kLong);
    for (int64_t r = 0; r < b; ++r) mask[r].narrow(0, 0, last[static_cast<size_t>(r)] + 1).fill_(1);
    mask = mask.to(device);
  }
  if (!options.use_cache) return decode_recomputing(lm, prompt_embeds, mask, last, ngrams, stop_id, options.max_new_tokens);

  // The prompt: only each row's last position is needed, so the last layer runs there alone.
  KVCache cache;
  lm->model->reserve(cache, b, p + options.max_new_tokens, prompt_embeds.options());
  at::Tensor logits =
      lm->logits(lm->model->forward(prompt_embeds, mask, {}, &cache, at::tensor(last, at::kLong).to(device).view({b, 1}))
                     .select(1, 0))
          .to(at::kFloat);
  const bool fixed = options.fixed_shapes.value_or(device.is_cuda());
  if (fixed) cache.fix_shapes(mask);
  std::vector<int64_t> positions(last);
  for (auto& position : positions) ++position;
  TokenStep feed(lm, cache, mask, positions, fixed && device.is_cuda() && options.cuda_graph);

  std::vector<std::vector<int32_t>> out(static_cast<size_t>(b));
  std::vector<bool> done(static_cast<size_t>(b), false);
  std::vector<int64_t> rows(static_cast<size_t>(b));  // batch row i decodes prompt rows[i]
  std::iota(rows.begin(), rows.end(), 0);
  DecodeStats stats;
  for (int64_t step = 0; step < options.max_new_tokens; ++step) {
    ++stats.steps;
    ban_ngrams(logits, rows, done, ngrams);
    const at::Tensor next = logits.argmax(-1).to(at::kCPU);  // the step's one transfer to the host
    const auto next_ids = next.accessor<int64_t, 1>();
    std::vector<int64_t> fed(rows.size()), running;
    for (size_t i = 0; i < rows.size(); ++i) {
      const auto r = static_cast<size_t>(rows[i]);
      fed[i] = done[r] ? stop_id : next_ids[static_cast<int64_t>(i)];  // finished rows idle on the stop token
      if (done[r]) continue;
      const auto token = static_cast<int32_t>(next_ids[static_cast<int64_t>(i)]);
      if (token == stop_id) {
        done[r] = true;
        continue;
      }
      out[r].push_back(token), ngrams[r].append(token);
      running.push_back(static_cast<int64_t>(i));
    }
    if (running.empty() || step + 1 == options.max_new_tokens) break;
    // Finished rows leave once a quarter of the batch has: at most a few cache copies per batch.
    if (4 * running.size() <= 3 * rows.size()) {
      std::vector<int64_t> kept_rows, kept_fed;
      for (const int64_t i : running) kept_rows.push_back(rows[static_cast<size_t>(i)]), kept_fed.push_back(fed[static_cast<size_t>(i)]);
      feed.keep_rows(running);
      rows = std::move(kept_rows), fed = std::move(kept_fed);
      ++stats.batch_shrinks;
    }
    logits = feed.run(fed);
    stats.graph_replays += feed.graph_replays() ? 1 : 0;
  }
  if (options.stats) *options.stats = stats;
  return out;
}

}  // namespace c3
