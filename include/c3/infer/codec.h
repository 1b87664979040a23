// C3Codec: the one path from text to latents and back (spec sections 1 and 2), which compress,
// reconstruct, eval, training-time validation and C++ users all take; each keeps only its own I/O.
//   encode: text -> spans of at most the span limit (cut_spans) -> token ids -> TEXT <img>
//           <imgpad>xN </img> through the encoder, Q and the projector -> N latents per span
//   decode: latents -> the decoder's prompt with them in its N slots -> greedy decoding (KV cache;
//           on CUDA a CUDA graph per token step) -> ids -> detokenised and stripped as the spec
//           says -> the spans' texts joined with the whitespace at each cut (join_spans)
// Many spans are batched shortest first, so batches pad little and depend only on the lengths.
//
//   C3Codec codec = C3Codec::load("runs/prose", {});
//   std::vector<EncodedText> z = codec.encode({"Some text.", "Another one."});
//   std::vector<std::string> back = codec.decode(z);
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "c3/infer/generate.h"
#include "c3/model/c3_io.h"
#include "c3/model/c3_model.h"
#include "c3/model/c3_prompt.h"
#include "c3/tokenizer/tokenizer.h"

namespace c3 {

// A piece of a text compressed into one set of N latents.
struct Span {
  std::vector<int32_t> ids;
  int64_t begin = 0, end = 0;  // byte range in the text
  std::string joiner;          // whitespace after it in the text
};

// Why a text cannot be compressed: not valid UTF-8, binary (NUL bytes), empty (whitespace only);
// "" when it can.
std::string unusable_text_reason(const std::string& text);

// The longest span of text compressed into one set of latents, and where the number comes from.
struct SpanLimit {
  int64_t tokens = 0;
  std::string source;  // for messages: "--max-span-tokens", "the longest text the model was trained on", ...
};
// `max_span_tokens` when set (> 0); else what a `max_length` window (> 0) leaves after the prompt
// around the text; else the longest text the model was trained to reconstruct
// (config.max_text_tokens); else what its trained window (config.max_length, else 8192) leaves.
// Warns when an explicit limit is longer than the texts the model was trained on; throws a
// UsageError when it leaves no room for text.
SpanLimit span_limit(const C3Config& config, const C3Prompt& prompt, int64_t max_span_tokens, int64_t max_length);

// Cuts `text` into spans of at most `max_tokens` tokens, at token boundaries that fall on
// character boundaries, each ending at a word boundary (a token that starts with or follows
// whitespace) when one lies in its last quarter; the spans cover the text in order. Each span's
// joiner is the whitespace around its cut (after the last span: the text's trailing whitespace),
// which reconstruction, stripping each output, cannot restore.
std::vector<Span> cut_spans(const std::string& text, const Tokenizer& tokenizer, int64_t max_tokens);

// The spans' reconstructions joined as the text had them: each followed by its span's joiner.
// (The Fox protocol scores a reconstruction stripped, which drops the last joiner again.)
std::string join_spans(const std::vector<std::string>& outputs, const std::vector<std::string>& joiners);

// Indices of `lengths`, shortest first, ties in index order.
std::vector<size_t> shortest_first(const std::vector<int64_t>& lengths);

// Every span of every item (a text, a page, a file), shortest first, ties in item then span order:
// the order batches are cut from (length_batches), so that they pad little and depend only on the
// lengths. counts[i]: item i's spans; length(i, s): span s of item i.
struct SpanOrder {
  std::vector<std::pair<size_t, size_t>> spans;  // (item, span)
  std::vector<int64_t> lengths;                  // of each, ascending
};
SpanOrder order_spans(const std::vector<size_t>& counts, const std::function<int64_t(size_t, size_t)>& length);

// Consecutive batches [begin, end) over items already sorted by length: each batch holds at most
// `max_rows` items and its padded size (rows x longest) stays within `budget` (a single item
// larger than the budget gets a batch of its own).
std::vector<std::pair<size_t, size_t>> length_batches(const std::vector<int64_t>& sorted_lengths, int64_t budget,
                                                      int64_t max_rows);

// One text compressed: the spans it was cut into and their latents.
struct EncodedText {
  std::vector<Span> spans;
  at::Tensor latents;  // [spans, N, decoder hidden], on the CPU, in the model's dtype
};

struct CodecOptions {
  int64_t max_span_tokens = 0;   // encode: the longest span (0: span_limit decides)
  int64_t batch_tokens = 16384;  // encode: padded encoder tokens per batch
  int64_t batch_size = 16;       // decode: sequences decoded together
  GenerateOptions generate;      // decode
};

class C3Codec {
 public:
  // `prompt` must be built for `model`'s N and `tokenizer`'s special tokens.
  C3Codec(C3Model model, std::shared_ptr<const Tokenizer> tokenizer, C3Prompt prompt);

  // A C3 checkpoint folder, or a training run (its newest checkpoint), with its tokenizer, the
  // authors' prompt with `instruction`, LoRA adapters folded into the weights, in eval mode, the
  // projections fused on a GPU, and the decoder quantized as options.quantize says (int8: fp32 on
  // the CPU only). Errors name the folder and the problem.
  static C3Codec load(const std::filesystem::path& model, C3LoadOptions options = {},
                      const std::string& instruction = kDefaultInstruction);

  C3Model& model() { return model_; }
  const C3Model& model() const { return model_; }
  const Tokenizer& tokenizer() const { return *tokenizer_; }
  const C3Prompt& prompt() const { return prompt_; }
  const std::filesystem::path& folder() const { return folder_; }    // what load() read; empty otherwise
  std::string fingerprint() const { return model_->fingerprint(); }  // what latent files record
  const std::string& quantize() const { return quantize_; }          // C3LoadOptions::quantize

  // One batch. Token ids (without special tokens) -> latents [B, N, decoder hidden] on the model's
  // device. No gradient.
  at::Tensor compress(const std::vector<const std::vector<int32_t>*>& texts);
  // What compress hands the projector: the encoder's slot states [B, N, encoder hidden].
  at::Tensor slot_states(const std::vector<const std::vector<int32_t>*>& texts);
  // Latents [B, N, decoder hidden] (any device and dtype) -> each row's generated ids, without the
  // closing <|im_end|>.
  std::vector<std::vector<int32_t>> generate(const at::Tensor& latents, const GenerateOptions& options);
  // The same, detokenised and stripped as the spec says (decode_reconstruction).
  std::vector<std::string> reconstruct(const at::Tensor& latents, const GenerateOptions& options);

  // compress() batches over spans of these text lengths (sorted ascending): at most `batch_tokens`
  // padded encoder tokens each (the text, N slots and 2 markers per row).
  std::vector<std::pair<size_t, size_t>> compress_batches(const std::vector<int64_t>& sorted_lengths,
                                                          int64_t batch_tokens) const;

  // Any number of texts. Each is cut into spans (unusable text is an error naming its index) and
  // every span of every text compressed in batches of options.batch_tokens.
  std::vector<EncodedText> encode(const std::vector<std::string>& texts, const CodecOptions& options = {});
  // Their reconstructions, spans decoded options.batch_size at a time and joined (join_spans). Of
  // each span it reads the joiner, and the number of its ids to batch spans of similar length (an
  // EncodedText made from a latent file: LatentFile::span_joiners and span_tokens).
  std::vector<std::string> decode(const std::vector<EncodedText>& encoded, const CodecOptions& options = {});

 private:
  C3Model model_;
  std::shared_ptr<const Tokenizer> tokenizer_;
  C3Prompt prompt_;
  std::filesystem::path folder_;
  std::string quantize_ = "none";
};

}  // namespace c3
