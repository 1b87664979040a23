// Byte-level BPE as Qwen2 (and GPT-2) use it, matching Hugging Face `tokenizers`:
// added tokens split out first (leftmost-longest, on the raw text), NFC, the pre-tokenizer regex
// (PCRE2 with Unicode classes), bytes, then merges applied lowest rank first.
#pragma once

#include <array>
#include <filesystem>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "c3/tokenizer/tokenizer.h"

namespace c3 {

// Qwen2's pre-tokenizer (spec section 5), and GPT-2's for ByteLevel(use_regex=true) files.
extern const char* const kQwen2Pattern;
extern const char* const kGpt2Pattern;

struct AddedToken {
  std::string content;
  int32_t id = 0;
  bool special = false;
};

class ByteLevelBpe : public Tokenizer {
 public:
  // tokens: raw bytes of each id (empty string = no token with that id); merges: (left id, right
  // id) pairs in rank order, each producing the token whose bytes are left + right.
  ByteLevelBpe(std::vector<std::string> tokens, const std::vector<std::pair<int32_t, int32_t>>& merges,
               std::vector<AddedToken> added, const std::string& pattern, bool nfc, std::string source);
  ~ByteLevelBpe() override;

  // Loaders. Every malformed input throws c3::Error naming the file (and line) and the problem.
  static std::unique_ptr<ByteLevelBpe> from_tokenizer_json(const std::filesystem::path& file);
  // vocab.json + merges.txt; added tokens from tokenizer_config.json (added_tokens_decoder) and/or
  // added_tokens.json beside them.
  static std::unique_ptr<ByteLevelBpe> from_vocab_merges(const std::filesystem::path& vocab,
                                                         const std::filesystem::path& merges);
  // qwen.tiktoken (base64 token, space, rank per line) with the released C3/GOT special tokens.
  static std::unique_ptr<ByteLevelBpe> from_tiktoken(const std::filesystem::path& file);

  std::vector<int32_t> encode(std::string_view text) const override { return encode_with(text, true); }
  std::vector<int32_t> encode_text(std::string_view text) const override { return encode_with(text, false); }
  std::string decode(const std::vector<int32_t>& ids, bool skip_special) const override;
  std::optional<int32_t> token_id(std::string_view token) const override;
  int64_t vocab_size() const override { return static_cast<int64_t>(tokens_.size()); }
  std::string kind() const override { return "byte-level-bpe"; }
  std::string source() const override { return source_; }

  const std::vector<std::string>& token_bytes() const { return tokens_; }
  const std::vector<AddedToken>& added_tokens() const { return added_; }
  std::vector<std::pair<int32_t, int32_t>> merges() const;  // in rank order

 private:
  static std::unique_ptr<ByteLevelBpe> tokenizer_json(const std::filesystem::path& file);
  static std::vector<AddedToken> added_tokens_beside(const std::filesystem::path& dir);
  void encode_ordinary(std::string_view text, std::vector<int32_t>& out) const;  // no added tokens
  std::vector<int32_t> encode_with(std::string_view text, bool special_tokens) const;
  void bpe(std::string_view piece, std::vector<int32_t>& out) const;

  std::vector<std::string> tokens_;
  std::unordered_map<std::string, int32_t> token_index_;          // raw bytes -> id
  std::unordered_map<uint64_t, std::pair<int32_t, int32_t>> ranks_;  // (left, right) -> (rank, merged)
  std::array<int32_t, 256> byte_ids_{};
  std::vector<AddedToken> added_;
  std::vector<bool> is_special_;
  std::array<std::vector<size_t>, 256> added_by_first_byte_;  // indices into added_, longest first
  bool nfc_ = true;
  std::string source_;
  struct Regex;
  std::unique_ptr<Regex> regex_;
  // Pre-token -> ids. English text repeats few thousand words, so most pre-tokens hit.
  mutable std::mutex cache_mutex_;
  mutable std::unordered_map<std::string, std::vector<int32_t>> cache_;
};

}  // namespace c3
