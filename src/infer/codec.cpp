#include "c3/infer/codec.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <limits>
#include <numeric>

#include "c3/model/run_folder.h"
#include "c3/tokenizer/unicode.h"
#include "c3/util/error.h"

namespace c3 {

std::string unusable_text_reason(const std::string& text) {
  if (!unicode::is_valid_utf8(text)) return "not valid UTF-8 text";
  if (text.find('\0') != std::string::npos) return "binary, not text (it holds NUL bytes)";
  if (std::all_of(text.begin(), text.end(), unicode::is_ascii_space)) return "empty (no text to compress)";
  return "";
}

SpanLimit span_limit(const C3Config& config, const C3Prompt& prompt, int64_t max_span_tokens, int64_t max_length) {
  const int64_t prompt_tokens = std::max(prompt.encoder_extra_tokens(), prompt.decoder_extra_tokens());
  const int64_t window = config.max_length > 0 ? config.max_length : 8192;
  SpanLimit limit;
  if (max_span_tokens > 0)
    limit = {max_span_tokens, "--max-span-tokens"};
  else if (max_length > 0)
    limit = {max_length - prompt_tokens, "what the " + std::to_string(max_length) + "-token --max-length leaves"};
  else if (config.max_text_tokens > 0)
    limit = {config.max_text_tokens, "the longest text the model was trained to reconstruct"};
  else
    limit = {window - prompt_tokens,
             "what the " + std::to_string(window) + "-token window the model was trained with leaves"};
  if (limit.tokens <= 0) throw UsageError("the window leaves no room for text (raise --max-span-tokens)");
  if (config.max_text_tokens > 0 && limit.tokens > config.max_text_tokens)
    spdlog::warn(
        "spans of up to {} tokens ({}) are longer than the {}-token texts this model was trained to reconstruct: "
        "expect much worse reconstructions past that length",
        limit.tokens, limit.source, config.max_text_tokens);
  return limit;
}

namespace {

// Whether a span may end before token `k` at a word boundary: token k starts with whitespace, or
// token k - 1 ends with it. Each token is decoded after its predecessor, so a sentencepiece "▁word"
// keeps its space.
bool word_boundary_before(const Tokenizer& tokenizer, const std::vector<int32_t>& ids, size_t k) {
  const std::string before = tokenizer.decode({ids[k - 1]});
  const std::string both = tokenizer.decode({ids[k - 1], ids[k]});
  if (!before.empty() && unicode::is_ascii_space(before.back())) return true;
  return both.size() > before.size() && both.compare(0, before.size(), before) == 0 &&
         unicode::is_ascii_space(both[before.size()]);
}

// Where a span starting at token `a` ends: `a + max_tokens`, moved back to a word boundary in the
// span's last quarter when there is one.
size_t span_end(const Tokenizer& tokenizer, const std::vector<int32_t>& ids, size_t a, int64_t max_tokens) {
  const size_t b = std::min(ids.size(), a + static_cast<size_t>(max_tokens));
  if (b == ids.size()) return b;
  const size_t lowest = a + std::max<size_t>(1, static_cast<size_t>(max_tokens - max_tokens / 4));
  for (size_t k = b; k >= lowest && k > a; --k)
    if (word_boundary_before(tokenizer, ids, k)) return k;
  return b;
}

}  // namespace

std::vector<Span> cut_spans(const std::string& text, const Tokenizer& tokenizer, int64_t max_tokens) {
  const std::vector<int32_t> ids = tokenizer.encode_text(text);
  std::vector<Span> spans;
  size_t a = 0;
  int64_t offset = 0;
  // The bytes of `text` from `offset` that a span decoding to `piece` covers, or -1. A sentencepiece
  // tokenizer drops the space that starts a sequence ("▁word" decodes to "word"): skipped spaces count.
  auto covered = [&](int64_t offset, const std::string& piece) -> int64_t {
    int64_t skip = 0;
    while (true) {
      if (text.compare(offset + skip, piece.size(), piece) == 0) return skip + static_cast<int64_t>(piece.size());
      if (offset + skip >= static_cast<int64_t>(text.size()) || !unicode::is_ascii_space(text[offset + skip]))
        return -1;
      ++skip;
    }
  };
  while (a < ids.size()) {
    size_t b = span_end(tokenizer, ids, a, max_tokens);
    std::string piece = tokenizer.decode(std::vector<int32_t>(ids.begin() + a, ids.begin() + b));
    // A cut inside a multi-byte character decodes to U+FFFD: move it back a token or two.
    for (int tries = 0; b < ids.size() && b > a + 1 && covered(offset, piece) < 0 && tries < 8; ++tries) {
      --b;
      piece = tokenizer.decode(std::vector<int32_t>(ids.begin() + a, ids.begin() + b));
    }
    const int64_t bytes = covered(offset, piece);
    Span span;
    span.ids.assign(ids.begin() + a, ids.begin() + b);
    span.begin = offset;
    span.end = std::min<int64_t>(static_cast<int64_t>(text.size()),
                                 offset + (bytes >= 0 ? bytes : static_cast<int64_t>(piece.size())));
    spans.push_back(std::move(span));
    offset = spans.back().end;
    a = b;
  }
  // Joiners: the whitespace around each cut and at the end, which reconstruction (it strips)
  // cannot restore.
  for (size_t i = 0; i < spans.size(); ++i) {
    int64_t ws_begin = spans[i].end, ws_end = spans[i].end;
    while (ws_begin > spans[i].begin && unicode::is_ascii_space(text[ws_begin - 1])) --ws_begin;
    if (i + 1 < spans.size())
      while (ws_end < spans[i + 1].end && unicode::is_ascii_space(text[ws_end])) ++ws_end;
    spans[i].joiner = text.substr(ws_begin, ws_end - ws_begin);
  }
  return spans;
}

std::vector<std::pair<size_t, size_t>> length_batches(const std::vector<int64_t>& sorted_lengths, int64_t budget,
                                                      int64_t max_rows) {
  std::vector<std::pair<size_t, size_t>> out;
  size_t i = 0;
  while (i < sorted_lengths.size()) {
    size_t j = i;
    int64_t longest = 0;
    while (j < sorted_lengths.size() && static_cast<int64_t>(j - i) < max_rows) {
      const int64_t grown = std::max(longest, sorted_lengths[j]);
      if (j > i && grown * static_cast<int64_t>(j - i + 1) > budget) break;
      longest = grown, ++j;
    }
    out.emplace_back(i, j);
    i = j;
  }
  return out;
}

std::string join_spans(const std::vector<std::string>& outputs, const std::vector<std::string>& joiners) {
  if (outputs.size() != joiners.size()) throw Error("join_spans: one joiner per span");
  std::string text;
  for (size_t s = 0; s < outputs.size(); ++s) text += outputs[s] + joiners[s];
  return text;
}

std::vector<size_t> shortest_first(const std::vector<int64_t>& lengths) {
  std::vector<size_t> order(lengths.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return lengths[a] < lengths[b]; });
  return order;
}

SpanOrder order_spans(const std::vector<size_t>& counts, const std::function<int64_t(size_t, size_t)>& length) {
  std::vector<std::pair<size_t, size_t>> spans;
  std::vector<int64_t> lengths;
  for (size_t i = 0; i < counts.size(); ++i)
    for (size_t s = 0; s < counts[i]; ++s) spans.emplace_back(i, s), lengths.push_back(length(i, s));
  SpanOrder order;
  for (const size_t k : shortest_first(lengths)) order.spans.push_back(spans[k]), order.lengths.push_back(lengths[k]);
  return order;
}

C3Codec::C3Codec(C3Model model, std::shared_ptr<const Tokenizer> tokenizer, C3Prompt prompt)
    : model_(std::move(model)), tokenizer_(std::move(tokenizer)), prompt_(std::move(prompt)) {
  if (prompt_.latent_tokens() != model_->config().latent_tokens)
    throw Error("C3Codec: the prompt has " + std::to_string(prompt_.latent_tokens()) + " latent slots, the model " +
                std::to_string(model_->config().latent_tokens));
}

C3Codec C3Codec::load(const std::filesystem::path& model, C3LoadOptions options, const std::string& instruction) {
  options.merge_adapters = true;  // inference: LoRA folded into the weights, no extra matmuls
  const std::filesystem::path folder = resolve_c3_checkpoint(model);
  if (std::find(kQuantizeChoices.begin(), kQuantizeChoices.end(), options.quantize) == kQuantizeChoices.end())
    throw UsageError("unknown quantization '" + options.quantize + "' (none or int8)");
  C3Model loaded = load_c3(folder, options);
  loaded->eval();
  if (options.quantize == "int8") {
    if (!loaded->device().is_cpu() || loaded->dtype() != at::kFloat)
      throw UsageError("int8 quantization decodes on the CPU in float32 (--device cpu --dtype float32 or auto)");
    loaded->decoder->quantize_int8();
  }
  // One GEMM for q/k/v and one for gate/up saves 60 kernel launches per decoding step of a
  // 30-layer model on a GPU. On the CPU it bought nothing measurable (bench_qwen2_forward: 0.99x
  // prefill, 1.03x batch-1 and 0.96x batch-8 decoding), so the CPU keeps the separate weights.
  if (loaded->device().is_cuda()) loaded->fuse_projections();
  std::shared_ptr<const Tokenizer> tokenizer = load_tokenizer(folder);
  C3Prompt prompt(*tokenizer, loaded->config().latent_tokens, kDefaultPromptTemplate, instruction);
  C3Codec codec(std::move(loaded), std::move(tokenizer), std::move(prompt));
  codec.folder_ = folder;
  codec.quantize_ = options.quantize;
  return codec;
}

at::Tensor C3Codec::compress(const std::vector<const std::vector<int32_t>*>& texts) {
  torch::NoGradGuard no_grad;
  const C3Batch batch = make_c3_batch(prompt_, texts, /*with_answers=*/false).to(model_->device());
  return model_->compress(batch.encoder_ids, batch.encoder_slots);
}

at::Tensor C3Codec::slot_states(const std::vector<const std::vector<int32_t>*>& texts) {
  torch::NoGradGuard no_grad;
  const C3Batch batch = make_c3_batch(prompt_, texts, /*with_answers=*/false).to(model_->device());
  return model_->slot_states(batch.encoder_ids, batch.encoder_slots);
}

std::vector<std::vector<int32_t>> C3Codec::generate(const at::Tensor& latents, const GenerateOptions& options) {
  torch::NoGradGuard no_grad;
  return greedy_generate(model_, prompt_, latents.to(model_->device(), model_->dtype()), options);
}

std::vector<std::string> C3Codec::reconstruct(const at::Tensor& latents, const GenerateOptions& options) {
  std::vector<std::string> texts;
  for (const auto& ids : generate(latents, options)) texts.push_back(decode_reconstruction(*tokenizer_, ids));
  return texts;
}

std::vector<std::pair<size_t, size_t>> C3Codec::compress_batches(const std::vector<int64_t>& sorted_lengths,
                                                                 int64_t batch_tokens) const {
  std::vector<int64_t> padded;
  for (const int64_t length : sorted_lengths) padded.push_back(length + prompt_.encoder_extra_tokens());
  return length_batches(padded, batch_tokens, std::numeric_limits<int64_t>::max());
}

std::vector<EncodedText> C3Codec::encode(const std::vector<std::string>& texts, const CodecOptions& options) {
  const int64_t limit = span_limit(model_->config(), prompt_, options.max_span_tokens, 0).tokens;
  std::vector<EncodedText> out(texts.size());
  std::vector<size_t> counts;
  for (size_t i = 0; i < texts.size(); ++i) {
    if (const std::string problem = unusable_text_reason(texts[i]); !problem.empty())
      throw Error("text " + std::to_string(i) + ": " + problem);
    out[i].spans = cut_spans(texts[i], *tokenizer_, limit);
    counts.push_back(out[i].spans.size());
  }
  const SpanOrder order =
      order_spans(counts, [&](size_t i, size_t s) { return static_cast<int64_t>(out[i].spans[s].ids.size()); });
  for (const auto& [begin, end] : compress_batches(order.lengths, options.batch_tokens)) {
    std::vector<const std::vector<int32_t>*> batch;
    for (size_t k = begin; k < end; ++k) batch.push_back(&out[order.spans[k].first].spans[order.spans[k].second].ids);
    const at::Tensor latents = compress(batch).to(at::kCPU);
    for (size_t k = begin; k < end; ++k) {
      auto [i, s] = order.spans[k];
      if (!out[i].latents.defined())
        out[i].latents =
            at::empty({static_cast<int64_t>(out[i].spans.size()), latents.size(1), latents.size(2)}, latents.options());
      out[i].latents[static_cast<int64_t>(s)].copy_(latents[static_cast<int64_t>(k - begin)]);
    }
  }
  return out;
}

std::vector<std::string> C3Codec::decode(const std::vector<EncodedText>& encoded, const CodecOptions& options) {
  const int64_t n = model_->config().latent_tokens, hidden = model_->config().decoder.hidden_size;
  std::vector<size_t> counts;
  std::vector<std::vector<std::string>> outputs(encoded.size());
  for (size_t i = 0; i < encoded.size(); ++i) {
    const EncodedText& e = encoded[i];
    const auto count = static_cast<int64_t>(e.spans.size());
    if (!e.latents.defined() || e.latents.dim() != 3 || e.latents.size(0) != count || e.latents.size(1) != n ||
        e.latents.size(2) != hidden)
      throw Error("text " + std::to_string(i) + ": latents are not [" + std::to_string(count) + " spans, " +
                  std::to_string(n) + ", " + std::to_string(hidden) + "] for this model");
    outputs[i].resize(e.spans.size());
    counts.push_back(e.spans.size());
  }
  // By the text tokens each span held, its output's expected length: rows of a batch end together.
  const SpanOrder order =
      order_spans(counts, [&](size_t i, size_t s) { return static_cast<int64_t>(encoded[i].spans[s].ids.size()); });
  const auto batch = static_cast<size_t>(std::max<int64_t>(1, options.batch_size));
  for (size_t begin = 0; begin < order.spans.size(); begin += batch) {
    const size_t end = std::min(order.spans.size(), begin + batch);
    std::vector<at::Tensor> rows;
    for (size_t k = begin; k < end; ++k)
      rows.push_back(encoded[order.spans[k].first].latents[static_cast<int64_t>(order.spans[k].second)]);
    const std::vector<std::string> texts = reconstruct(at::stack(rows), options.generate);
    for (size_t k = begin; k < end; ++k) outputs[order.spans[k].first][order.spans[k].second] = texts[k - begin];
  }
  std::vector<std::string> out;
  for (size_t i = 0; i < encoded.size(); ++i) {
    std::vector<std::string> joiners;
    for (const auto& span : encoded[i].spans) joiners.push_back(span.joiner);
    out.push_back(join_spans(outputs[i], joiners));
  }
  return out;
}

}  // namespace c3
