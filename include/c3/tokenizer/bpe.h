// BPE as Hugging Face `tokenizers` runs it, with the text steps of its tokenizer.json around the
// model (c3/tokenizer/text_pipeline.h): added tokens split out first (leftmost-longest; those
// marked "normalized" are matched after the normalizer), the normalizer, the pre-tokenizer, then
// merges applied lowest rank first to each pre-token's bytes (a byte-level vocabulary, as Qwen2,
// GPT-2, Llama 3 and SmolLM2 have) or characters (as Llama 2's), with the model's options.
#pragma once

#include <array>
#include <filesystem>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "c3/tokenizer/text_pipeline.h"
#include "c3/tokenizer/tokenizer.h"

namespace c3 {

// Qwen2's pre-tokenizer (spec section 5), and GPT-2's for ByteLevel(use_regex=true).
extern const char* const kQwen2Pattern;
extern const char* const kGpt2Pattern;

struct AddedToken {
  std::string content;
  int32_t id = 0;
  bool special = false;
  bool normalized = false;              // matched in the normalized text, as the normalizer spells it
  bool lstrip = false, rstrip = false;  // the match takes in the whitespace to its left / right
};

// The BPE model's options in tokenizer.json.
struct BpeOptions {
  bool ignore_merges = false;  // a pre-token that is itself in the vocabulary is that token (Llama 3)
  bool byte_fallback = false;  // a character missing from the vocabulary becomes its bytes' <0xXX> tokens...
  std::optional<int32_t> unk;  // ...else this token (a run of them one token with fuse_unk), else it is dropped
  bool fuse_unk = false;
  std::string continuing_subword_prefix;  // spelled on every unit but a pre-token's first ("##")
  std::string end_of_word_suffix;         // spelled on a pre-token's last unit ("</w>")
};

class BpeTokenizer : public Tokenizer {
 public:
  // tokens: each id's text as the model sees it (raw bytes with a byte-level pipeline, else the
  // vocabulary's own spelling; "" = no token with that id); merges: (left id, right id) pairs in rank
  // order, each producing the token left + right (less the right's continuing_subword_prefix).
  BpeTokenizer(std::vector<std::string> tokens, const std::vector<std::pair<int32_t, int32_t>>& merges,
               std::vector<AddedToken> added, TextPipeline pipeline, BpeOptions options, std::string source);
  ~BpeTokenizer() override;

  // Loaders. Every malformed input, and every step or option c3 does not implement, throws
  // c3::Error naming the file (and line) and the problem.
  static std::unique_ptr<BpeTokenizer> from_tokenizer_json(const std::filesystem::path& file);
  // vocab.json + merges.txt (Qwen2's pipeline); added tokens from tokenizer_config.json
  // (added_tokens_decoder) and/or added_tokens.json beside them.
  static std::unique_ptr<BpeTokenizer> from_vocab_merges(const std::filesystem::path& vocab,
                                                         const std::filesystem::path& merges);
  // qwen.tiktoken (base64 token, space, rank per line) with the released C3/GOT special tokens.
  static std::unique_ptr<BpeTokenizer> from_tiktoken(const std::filesystem::path& file);

  std::vector<int32_t> encode(std::string_view text) const override { return encode_with(text, true); }
  std::vector<int32_t> encode_text(std::string_view text) const override { return encode_with(text, false); }
  std::vector<int32_t> with_special_tokens(std::vector<int32_t> ids) const override;
  std::string decode(const std::vector<int32_t>& ids, bool skip_special) const override;
  std::optional<int32_t> token_id(std::string_view token) const override;
  int64_t vocab_size() const override { return static_cast<int64_t>(tokens_.size()); }
  std::string kind() const override { return pipeline_.byte_level() ? "byte-level-bpe" : "bpe"; }
  std::string source() const override { return source_; }

  const std::vector<std::string>& token_bytes() const { return tokens_; }
  const std::vector<AddedToken>& added_tokens() const { return added_; }
  std::vector<std::pair<int32_t, int32_t>> merges() const;  // in rank order

 private:
  // Added tokens by the first byte of the text they match, longest first.
  struct AddedIndex {
    std::vector<std::pair<std::string, size_t>> by_first_byte[256];  // (text, index into added_)
    bool empty = true;
  };
  static std::unique_ptr<BpeTokenizer> tokenizer_json(const std::filesystem::path& file);
  static std::vector<AddedToken> added_tokens_beside(const std::filesystem::path& dir);
  std::vector<int32_t> encode_with(std::string_view text, bool special_tokens) const;
  // Splits `text` on the added tokens of `index`; `plain` gets the stretches between them.
  void split_added(std::string_view text, const AddedIndex& index, bool special_tokens, std::vector<int32_t>& out,
                   const std::function<void(std::string_view, size_t)>& plain) const;
  void encode_stretch(std::string_view text, bool at_start, bool special_tokens, std::vector<int32_t>& out) const;
  void initial_symbols(std::string_view piece, std::vector<int32_t>& symbols) const;
  void bpe(std::string_view piece, std::vector<int32_t>& out) const;
  void merge_short(std::vector<int32_t>& symbols) const;
  void merge_long(std::vector<int32_t>& symbols) const;

  std::vector<std::string> tokens_;
  std::unordered_map<std::string, int32_t> token_index_;             // token text -> id (the vocabulary's)
  std::unordered_map<uint64_t, std::pair<int32_t, int32_t>> ranks_;  // (left, right) -> (rank, merged)
  std::array<int32_t, 256> byte_ids_{};
  std::vector<AddedToken> added_;
  std::vector<bool> is_special_;
  AddedIndex raw_added_, normalized_added_;
  TextPipeline pipeline_;
  BpeOptions options_;
  bool plain_units_ = true;  // byte-level, no affixes, unk or fallback: units map straight to ids
  std::string source_;
  // Pre-token -> ids. English text repeats few thousand words, so most pre-tokens hit.
  mutable std::mutex cache_mutex_;
  mutable std::unordered_map<std::string, std::vector<int32_t>> cache_;
};

}  // namespace c3
