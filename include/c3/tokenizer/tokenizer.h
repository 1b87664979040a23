// One interface over both tokenizer kinds c3 uses: BPE as Hugging Face tokenizer.json files define it
// (Qwen2's byte-level BPE in released models, Llama's, GPT-2's, ...) and sentencepiece (models
// trained from scratch). The rest of c3 sees only this.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace c3 {

class Tokenizer {
 public:
  virtual ~Tokenizer() = default;
  // No BOS/EOS is added. Bytes that are not valid UTF-8 are replaced by U+FFFD (and a warning
  // is logged once per process).
  // Special-token strings ("<|im_end|>", "<img>") in the text become those tokens: for prompts
  // and templates.
  virtual std::vector<int32_t> encode(std::string_view text) const = 0;
  // Text as a user wrote it (documents, questions): special-token strings stay ordinary
  // characters, so no text can forge a token that steers the model (HF's split_special_tokens;
  // added tokens that are not special are still matched). Decodes back to the same text.
  virtual std::vector<int32_t> encode_text(std::string_view text) const = 0;
  // `ids` with the tokenizer's post-processor tokens around them (BOS, EOS: HF's
  // add_special_tokens=True); a tokenizer without a post-processor returns them unchanged.
  virtual std::vector<int32_t> with_special_tokens(std::vector<int32_t> ids) const { return ids; }
  // Ids back to text; ill-formed UTF-8 in the result is replaced by U+FFFD. An id outside the
  // vocabulary throws c3::Error.
  virtual std::string decode(const std::vector<int32_t>& ids, bool skip_special = false) const = 0;
  // The id of a token spelled as it appears in text ("<|im_end|>", "<imgpad>"), if it is one token.
  virtual std::optional<int32_t> token_id(std::string_view token) const = 0;
  virtual int64_t vocab_size() const = 0;  // largest id + 1
  virtual std::string kind() const = 0;    // "byte-level-bpe", "bpe" or "sentencepiece"
  virtual std::string source() const = 0;  // the file(s) it was loaded from
};

// `path`: a checkpoint or tokenizer folder, or one tokenizer file. A folder is searched in this
// order: tokenizer.json, vocab.json + merges.txt, qwen.tiktoken, tokenizer.model.
std::unique_ptr<Tokenizer> load_tokenizer(const std::filesystem::path& path);

// The largest token id a tokenizer file may hold: real vocabularies have a few hundred thousand
// ids; a larger one is a damaged file, and honouring it would allocate gigabytes.
inline constexpr int64_t kMaxTokenId = (int64_t{1} << 24) - 1;

// Copies the tokenizer files of `source` (a folder: every known tokenizer file in it; a file: that
// file) into the folder `destination`.
void copy_tokenizer_files(const std::filesystem::path& source, const std::filesystem::path& destination);
// The same files read into memory, file name -> contents: what a long run writes into each
// checkpoint without depending on `source` still being there.
std::map<std::string, std::string> read_tokenizer_files(const std::filesystem::path& source);

// The image tokens C3's prompts need, in the order the authors appended them to Qwen2.5's
// vocabulary: <imgpad>, <img>, </img> (151665, 151666, 151667 there).
const std::vector<std::string>& c3_image_tokens();

// Writes a copy of the tokenizer folder `source` into the existing folder `destination`, with the
// image tokens `tokenizer` (loaded from `source`) lacks appended as special added tokens after its
// largest id. Handles tokenizer.json and vocab.json + merges.txt folders (added_tokens.json and
// tokenizer_config.json's added_tokens_decoder); anything else is an error naming `source`.
// When nothing is missing, the files are copied as they are. Returns the tokens added with their ids.
std::vector<std::pair<std::string, int32_t>> write_tokenizer_with_c3_tokens(const std::filesystem::path& source,
                                                                            const Tokenizer& tokenizer,
                                                                            const std::filesystem::path& destination);

// The special tokens of the released C3 prompt template, which any c3 tokenizer must have.
const std::vector<std::string>& c3_special_tokens();

}  // namespace c3
