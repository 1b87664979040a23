#include "c3/io/checkpoint_dir.h"
#include "c3/tokenizer/bpe.h"
#include "c3/tokenizer/sentencepiece.h"
#include "c3/tokenizer/tokenizer.h"
#include "c3/util/atomic_file.h"
#include "c3/util/error.h"

namespace fs = std::filesystem;

namespace c3 {

const std::vector<std::string>& c3_special_tokens() {
  static const std::vector<std::string> tokens{"<|endoftext|>", "<|im_start|>", "<|im_end|>",
                                               "<img>",         "</img>",       "<imgpad>"};
  return tokens;
}

std::unique_ptr<Tokenizer> load_tokenizer(const fs::path& path) {
  std::error_code ec;
  if (fs::is_directory(path, ec)) {
    if (fs::exists(path / "tokenizer.json", ec)) return BpeTokenizer::from_tokenizer_json(path / "tokenizer.json");
    if (fs::exists(path / "vocab.json", ec) && fs::exists(path / "merges.txt", ec))
      return BpeTokenizer::from_vocab_merges(path / "vocab.json", path / "merges.txt");
    if (fs::exists(path / "qwen.tiktoken", ec)) return BpeTokenizer::from_tiktoken(path / "qwen.tiktoken");
    if (fs::exists(path / "tokenizer.model", ec))
      return std::make_unique<SentencePieceTokenizer>(path / "tokenizer.model");
    fail_file(path.string(),
              "no tokenizer: expected tokenizer.json, vocab.json + merges.txt, qwen.tiktoken or tokenizer.model");
  }
  if (!fs::exists(path, ec)) fail_file(path.string(), "no such file or folder");
  const std::string name = path.filename().string();
  const std::string ext = path.extension().string();
  if (ext == ".json" && name != "vocab.json") return BpeTokenizer::from_tokenizer_json(path);
  if (name == "vocab.json" || name == "merges.txt")
    return BpeTokenizer::from_vocab_merges(path.parent_path() / "vocab.json", path.parent_path() / "merges.txt");
  if (ext == ".tiktoken") return BpeTokenizer::from_tiktoken(path);
  if (ext == ".model") return std::make_unique<SentencePieceTokenizer>(path);
  fail_file(path.string(),
            "not a tokenizer file (expected tokenizer.json, vocab.json, merges.txt, *.tiktoken or *.model)");
}

namespace {

// A folder: every known tokenizer file in it; a file: that file.
std::vector<fs::path> tokenizer_files_of(const fs::path& source) {
  std::error_code ec;
  std::vector<fs::path> files;
  if (fs::is_directory(source, ec)) {
    for (const std::string& name : io::tokenizer_file_names())
      if (fs::exists(source / name, ec)) files.push_back(source / name);
    if (files.empty()) fail_file(source.string(), "no tokenizer files in this folder");
  } else {
    files.push_back(source);
  }
  return files;
}

}  // namespace

void copy_tokenizer_files(const fs::path& source, const fs::path& destination) {
  for (const fs::path& file : tokenizer_files_of(source)) {
    std::error_code ec;
    fs::copy_file(file, destination / file.filename(), fs::copy_options::overwrite_existing, ec);
    if (ec) fail_file(file.string(), "cannot copy into " + destination.string() + ": " + ec.message());
  }
}

std::map<std::string, std::string> read_tokenizer_files(const fs::path& source) {
  std::map<std::string, std::string> out;
  for (const fs::path& file : tokenizer_files_of(source)) out[file.filename().string()] = read_text_file(file);
  return out;
}

}  // namespace c3
