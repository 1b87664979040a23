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
#include "c3/util/stop_signals.h"
#include "captured_step.h"

namespace c3 {
namespace {

// The rows' next tokens in, their [B, V] float logits out: the decoder one position further into
// the cache. Dynamic shapes: attention over the filled positions, which the cache's host-side
// length counts. Fixed shapes (KVCache::fix_shapes): no shape or host value changes between steps,
// inputs and outputs stay in the same buffers, and on CUDA the step is captured once as a graph
// (after one eager step on the capture's stream) and replayed; when capture fails it says why once and runs eagerly.
class TokenStep {
 public:
  TokenStep(Qwen2ForCausalLM& lm, KVCache& cache, int64_t batch, bool graph)
      : lm_(lm), cache_(cache), graph_wanted_(graph) {
    const auto device = lm_->output_embedding().device();
    tokens_ = at::zeros({batch, 1}, at::TensorOptions().dtype(at::kLong).device(device));
  }

  at::Tensor run(const std::vector<int64_t>& tokens) {
    tokens_.copy_(at::tensor(tokens, at::kLong).view({-1, 1}));
    if (!cache_.fixed_shapes() || !graph_wanted_) return forward();
    if (graph_.captured()) return graph_.replay(), logits_;
    if (!warmed_up_) {  // a real step, on the stream that captures next
      graph_.warm_up([this] { logits_ = forward(); }, tokens_.device());
      warmed_up_ = true;
      return logits_;
    }
    const std::string why = graph_.capture([this] { logits_ = forward(); }, tokens_.device());
    if (why.empty()) return graph_.replay(), logits_;
    static std::once_flag said;
    std::call_once(said,
                   [&] { spdlog::warn("decoding without a CUDA graph (each step launches its kernels): {}", why); });
    graph_wanted_ = false;
    return forward();
  }

  // Keeps batch rows `kept` (indices into the current batch) and drops the others.
  void keep_rows(const std::vector<int64_t>& kept) {
    const at::Tensor index = at::tensor(kept, at::kLong).to(tokens_.device());
    cache_.keep_rows(index);
    tokens_ = tokens_.index_select(0, index);
    graph_.reset(), warmed_up_ = false;  // shapes changed: capture again
  }

  bool graph_replays() const { return graph_.captured(); }

 private:
  at::Tensor forward() {
    RECORD_USER_SCOPE("c3::token_step");  // the ops a CUDA graph replays (counted by bench_reconstruct)
    return lm_->logits(lm_->step(lm_->embed(tokens_), cache_).select(1, 0)).to(at::kFloat);
  }

  Qwen2ForCausalLM& lm_;
  KVCache& cache_;
  at::Tensor tokens_;  // [B, 1]: the fed tokens
  at::Tensor logits_;  // the captured step's output
  bool graph_wanted_;
  CapturedStep graph_;
  bool warmed_up_ = false;
};

// The rows of one decoding (one per prompt): their outputs, n-gram histories and whether they
// have stopped.
struct Decoding {
  std::vector<std::vector<int32_t>> out;
  std::vector<NoRepeatNgram> ngrams;
  std::vector<bool> done;
  int32_t stop_id;

  // Sets the logits of every token the n-gram rule bans to -inf, for the running ones among the
  // batch's rows (`prompt_of`: the prompt each row decodes).
  void ban(at::Tensor& logits, const std::vector<int64_t>& prompt_of) const {
    std::vector<int64_t> ban_rows, ban_cols;
    for (size_t i = 0; i < prompt_of.size(); ++i) {
      if (done[static_cast<size_t>(prompt_of[i])]) continue;
      for (int32_t t : ngrams[static_cast<size_t>(prompt_of[i])].banned())
        ban_rows.push_back(static_cast<int64_t>(i)), ban_cols.push_back(t);
    }
    if (ban_rows.empty()) return;
    const auto device = logits.device();
    logits.index_put_({at::tensor(ban_rows, at::kLong).to(device), at::tensor(ban_cols, at::kLong).to(device)},
                      at::full({}, -std::numeric_limits<float>::infinity(), logits.options()));
  }

  // Takes each batch row's token (`next`, on the CPU): appended to its output, or its stop. Returns
  // the tokens to feed back (finished rows idle on the stop token) and the batch rows still running.
  std::pair<std::vector<int64_t>, std::vector<int64_t>> take(const at::Tensor& next,
                                                             const std::vector<int64_t>& prompt_of) {
    const auto ids = next.accessor<int64_t, 1>();
    std::vector<int64_t> fed(prompt_of.size()), running;
    for (size_t i = 0; i < prompt_of.size(); ++i) {
      const auto r = static_cast<size_t>(prompt_of[i]);
      const auto token = static_cast<int32_t>(ids[static_cast<int64_t>(i)]);
      fed[i] = done[r] ? stop_id : token;
      if (done[r]) continue;
      if (token == stop_id) {
        done[r] = true;
        continue;
      }
      out[r].push_back(token), ngrams[r].append(token);
      running.push_back(static_cast<int64_t>(i));
    }
    return {fed, running};
  }
};

// Without a cache (tests, benchmarks): the whole sequence again for every token.
void decode_recomputing(Qwen2ForCausalLM& lm, at::Tensor embeds, at::Tensor mask, const std::vector<int64_t>& last,
                        Decoding& d, int64_t max_new_tokens, const StopSignals* stop) {
  const auto device = embeds.device();
  const int64_t b = embeds.size(0);
  std::vector<int64_t> prompt_of(static_cast<size_t>(b));
  std::iota(prompt_of.begin(), prompt_of.end(), 0);
  at::Tensor last_positions = at::tensor(last, at::kLong).to(device).view({b, 1});
  for (int64_t step = 0; step < max_new_tokens; ++step) {
    throw_if_stopped(stop);
    at::Tensor logits = lm->logits(lm->hidden_states(embeds, mask, last_positions).select(1, 0)).to(at::kFloat);
    d.ban(logits, prompt_of);
    const auto [fed, running] = d.take(logits.argmax(-1).to(at::kCPU), prompt_of);
    if (running.empty()) break;
    embeds = at::cat({embeds, lm->embed(at::tensor(fed, at::kLong).to(device).view({b, 1}))}, 1);
    if (mask.defined()) mask = at::cat({mask, at::ones({b, 1}, mask.options())}, 1);
    last_positions = at::full({b, 1}, embeds.size(1) - 1, at::kLong).to(device);
  }
}

// [B, P] with 1 on each row's prompt, when the prompts differ in length (a cache of unequal rows
// needs it); undefined when every prompt fills all P positions.
at::Tensor prompt_mask(const std::vector<int64_t>& last, int64_t p, const c10::Device& device) {
  if (std::all_of(last.begin(), last.end(), [&](int64_t l) { return l == p - 1; })) return {};
  at::Tensor mask = at::zeros({static_cast<int64_t>(last.size()), p}, at::kLong);
  for (size_t r = 0; r < last.size(); ++r) mask[static_cast<int64_t>(r)].narrow(0, 0, last[r] + 1).fill_(1);
  return mask.to(device);
}

}  // namespace

std::vector<std::vector<int32_t>> greedy_decode(Qwen2ForCausalLM& lm, const at::Tensor& prompt_embeds,
                                                const std::vector<std::vector<int32_t>>& prompt_ids, int32_t stop_id,
                                                const GenerateOptions& options) {
  torch::NoGradGuard no_grad;
  const auto device = prompt_embeds.device();
  const int64_t b = prompt_embeds.size(0), p = prompt_embeds.size(1);
  if (static_cast<int64_t>(prompt_ids.size()) != b) throw Error("greedy_decode: one prompt_ids row per batch row");
  Decoding d{std::vector<std::vector<int32_t>>(static_cast<size_t>(b)),
             std::vector<NoRepeatNgram>(static_cast<size_t>(b), NoRepeatNgram(options.no_repeat_ngram_size)),
             std::vector<bool>(static_cast<size_t>(b), false), stop_id};
  std::vector<int64_t> last;  // each row's last prompt position: its logits give the first token
  for (size_t r = 0; r < prompt_ids.size(); ++r) {
    const auto length = static_cast<int64_t>(prompt_ids[r].size());
    if (length < 1 || length > p) throw Error("greedy_decode: a prompt is empty or longer than the embeddings");
    last.push_back(length - 1);
    for (int32_t id : prompt_ids[r]) d.ngrams[r].append(id);
  }
  const at::Tensor mask = prompt_mask(last, p, device);
  if (!options.use_cache)
    return decode_recomputing(lm, prompt_embeds, mask, last, d, options.max_new_tokens, options.stop), d.out;

  // The prompt: only each row's last position is needed, so the last layer runs there alone.
  KVCache cache;
  lm->reserve(cache, b, p + options.max_new_tokens, prompt_embeds.options());
  const at::Tensor at_last = at::tensor(last, at::kLong).to(device).view({b, 1});
  at::Tensor logits = lm->logits(lm->prefill(prompt_embeds, cache, mask, at_last).select(1, 0)).to(at::kFloat);
  const bool fixed = options.fixed_shapes.value_or(device.is_cuda());
  if (fixed) cache.fix_shapes();
  TokenStep feed(lm, cache, b, fixed && device.is_cuda() && options.cuda_graph);

  std::vector<int64_t> prompt_of(static_cast<size_t>(b));  // batch row i decodes prompt prompt_of[i]
  std::iota(prompt_of.begin(), prompt_of.end(), 0);
  DecodeStats stats;
  for (int64_t step = 0; step < options.max_new_tokens; ++step) {
    throw_if_stopped(options.stop);
    ++stats.steps;
    d.ban(logits, prompt_of);
    auto [fed, running] = d.take(logits.argmax(-1).to(at::kCPU), prompt_of);  // the step's one transfer to the host
    if (running.empty() || step + 1 == options.max_new_tokens) break;
    // Finished rows leave once a quarter of the batch has: at most a few cache copies per batch.
    if (4 * running.size() <= 3 * prompt_of.size()) {
      std::vector<int64_t> kept_prompts, kept_fed;
      for (const int64_t i : running)
        kept_prompts.push_back(prompt_of[static_cast<size_t>(i)]), kept_fed.push_back(fed[static_cast<size_t>(i)]);
      feed.keep_rows(running);
      prompt_of = std::move(kept_prompts), fed = std::move(kept_fed);
      ++stats.batch_shrinks;
    }
    logits = feed.run(fed);
    stats.graph_replays += feed.graph_replays() ? 1 : 0;
  }
  if (options.stats) *options.stats = stats;
  return d.out;
}

}  // namespace c3
