// The text steps a Hugging Face tokenizer.json puts around its model, read from the file and run as
// `tokenizers` runs them: the normalizer (NFC, NFD, NFKC, NFKD, Lowercase, Replace, Prepend, Strip,
// Sequence), the pre-tokenizer (Split with its behaviour, ByteLevel, Digits, Metaspace, Whitespace,
// WhitespaceSplit, Sequence), the decoder (ByteLevel, Metaspace, ByteFallback, Fuse, Strip, Replace,
// BPEDecoder, WordPiece, Sequence) and the post-processor's special tokens around one sequence
// (TemplateProcessing, RobertaProcessing, BertProcessing, ByteLevel, Sequence). A step or option c3
// does not implement is refused by name when the file is read, never approximated.
#pragma once

#include <nlohmann/json_fwd.hpp>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace c3 {

class TextPipeline {
 public:
  // doc: a tokenizer.json's top-level object; errors are "`file`: ...".
  static TextPipeline from_tokenizer_json(const nlohmann::json& doc, const std::string& file);
  // Qwen2's (spec section 5): NFC, its split regex, byte level. For folders without a tokenizer.json
  // (vocab.json + merges.txt, qwen.tiktoken).
  static TextPipeline qwen2(const std::string& file);

  TextPipeline(TextPipeline&&) noexcept;
  TextPipeline& operator=(TextPipeline&&) noexcept;
  ~TextPipeline();

  // A ByteLevel pre-tokenizer: the model sees the text's bytes, and the vocabulary spells them in
  // GPT-2's byte alphabet. Otherwise the model sees characters, spelled as themselves.
  bool byte_level() const { return byte_level_; }
  bool normalizes() const;
  std::string normalize(std::string_view text) const;
  // Splits `text` (a normalized stretch between added tokens) into pre-tokens and hands each
  // non-empty one to `emit`. at_start: the stretch begins the input (Metaspace's "first" scheme).
  void pre_tokenize(std::string_view text, bool at_start, const std::function<void(std::string_view)>& emit) const;
  // Token texts (bytes for a byte-level vocabulary, else as the vocabulary spells them) -> text.
  std::string decode(std::vector<std::string> tokens) const;
  // The post-processor's special-token ids before and after a single sequence (BOS, EOS).
  const std::vector<int32_t>& prefix_ids() const { return prefix_ids_; }
  const std::vector<int32_t>& suffix_ids() const { return suffix_ids_; }

  struct Normalizer;
  struct PreTokenizer;
  struct Decoder;

 private:
  TextPipeline();
  void pre_tokenize_from(size_t step, std::string_view text, bool at_start,
                         const std::function<void(std::string_view)>& emit) const;

  std::vector<Normalizer> normalizers_;
  std::vector<PreTokenizer> pre_tokenizers_;
  std::vector<Decoder> decoders_;
  bool has_decoder_ = false;
  bool byte_level_ = false;
  std::vector<int32_t> prefix_ids_, suffix_ids_;
};

}  // namespace c3
