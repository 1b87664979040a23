// sentencepiece models (.model files), for c3 models trained from scratch with their own vocabulary.
// sentencepiece itself runs inside libc3_sentencepiece.so, loaded on first use (see src/tokenizer/spm_shim.h).
#pragma once

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "c3/tokenizer/tokenizer.h"

namespace c3 {

class SentencePieceTokenizer : public Tokenizer {
 public:
  explicit SentencePieceTokenizer(const std::filesystem::path& model_file);
  ~SentencePieceTokenizer() override;

  std::vector<int32_t> encode(std::string_view text) const override;
  // sentencepiece matches its user-defined symbols (C3's special tokens) wherever they appear, so
  // each one it finds in the text is replaced by the byte pieces of its characters.
  std::vector<int32_t> encode_text(std::string_view text) const override;
  std::string decode(const std::vector<int32_t>& ids, bool skip_special) const override;
  std::optional<int32_t> token_id(std::string_view token) const override;
  int64_t vocab_size() const override;
  std::string kind() const override { return "sentencepiece"; }
  std::string source() const override { return source_; }

 private:
  bool is_special(int32_t id) const;  // control pieces and the C3 special tokens
  void* handle_ = nullptr;            // owned by libc3_sentencepiece.so (loaded at run time, isolated)
  std::string source_;
};

struct SentencePieceTrainOptions {
  std::vector<std::filesystem::path> inputs;  // plain-text files, one sentence/paragraph per line
  int vocab_size = 8000;
  std::string model_type = "bpe";  // bpe | unigram
  double character_coverage = 1.0;
  int threads = 1;
  bool overwrite = false;
};

// Trains a model into `dir/tokenizer.model` (+ tokenizer.vocab). The C3 special tokens are
// user-defined symbols (always one piece each), byte fallback keeps every input encodable, and
// identity normalisation keeps whitespace and newlines, so decode(encode(text)) == text.
// The folder appears complete or not at all.
void train_sentencepiece(const SentencePieceTrainOptions& options, const std::filesystem::path& dir);

}  // namespace c3
