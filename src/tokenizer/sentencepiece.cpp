#include "c3/tokenizer/sentencepiece.h"

#include <dlfcn.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <fmt/format.h>
#include <regex>
#include <sstream>

#include "c3/tokenizer/unicode.h"
#include "c3/util/atomic_file.h"
#include "c3/util/error.h"
#include "spm_shim.h"

namespace fs = std::filesystem;

namespace c3 {
namespace {

// The shim's functions, loaded once (see spm_shim.h for why sentencepiece is isolated).
struct SpmApi {
  decltype(&c3spm_load) load;
  decltype(&c3spm_free) free;
  decltype(&c3spm_encode) encode;
  decltype(&c3spm_decode) decode;
  decltype(&c3spm_piece_size) piece_size;
  decltype(&c3spm_piece_to_id) piece_to_id;
  decltype(&c3spm_id_to_piece) id_to_piece;
  decltype(&c3spm_is_control) is_control;
  decltype(&c3spm_train) train;
};

constexpr const char* kShimName = "libc3_sentencepiece.so";

std::vector<fs::path> shim_candidates() {
  std::vector<fs::path> paths;
  if (const char* env = std::getenv("C3_SENTENCEPIECE_LIBRARY")) paths.emplace_back(env);
  std::error_code ec;
  const fs::path exe_dir = fs::read_symlink("/proc/self/exe", ec).parent_path();
  if (!ec) {
    paths.push_back(exe_dir / kShimName);
    paths.push_back(exe_dir.parent_path() / kShimName);          // build/tests/x -> build/
    paths.push_back(exe_dir.parent_path() / "lib" / kShimName);  // installed: bin/ -> lib/
  }
  paths.emplace_back(C3_SPM_SHIM_BUILD_PATH);
  paths.emplace_back(C3_SPM_SHIM_INSTALL_PATH);  // a program linking the installed library
  return paths;
}

const SpmApi& spm() {
  static const SpmApi api = [] {
    void* lib = nullptr;
    std::string tried, last_error;
    for (const auto& p : shim_candidates()) {
      std::error_code ec;
      if (!fs::exists(p, ec)) {
        tried += (tried.empty() ? "" : ", ") + p.string();
        continue;
      }
      // A link namespace of its own: sentencepiece, its protobuf and its C++ runtime never meet
      // LibTorch's. (RTLD_DEEPBIND is not enough: sentencepiece then writes to an unconstructed
      // std::cerr, because the executable's copy-relocated one is the constructed object.)
      lib = ::dlmopen(LM_ID_NEWLM, p.c_str(), RTLD_NOW | RTLD_LOCAL);
      if (lib) break;
      last_error = ::dlerror();
    }
    if (!lib)
      throw Error(std::string(kShimName) + ": cannot load sentencepiece support (" +
                  (last_error.empty() ? "not found in " + tried : last_error) + ")");
    SpmApi a{};
    auto get = [&](const char* name) {
      void* f = ::dlsym(lib, name);
      if (!f) throw Error(std::string(kShimName) + ": missing symbol " + name);
      return f;
    };
    a.load = reinterpret_cast<decltype(a.load)>(get("c3spm_load"));
    a.free = reinterpret_cast<decltype(a.free)>(get("c3spm_free"));
    a.encode = reinterpret_cast<decltype(a.encode)>(get("c3spm_encode"));
    a.decode = reinterpret_cast<decltype(a.decode)>(get("c3spm_decode"));
    a.piece_size = reinterpret_cast<decltype(a.piece_size)>(get("c3spm_piece_size"));
    a.piece_to_id = reinterpret_cast<decltype(a.piece_to_id)>(get("c3spm_piece_to_id"));
    a.id_to_piece = reinterpret_cast<decltype(a.id_to_piece)>(get("c3spm_id_to_piece"));
    a.is_control = reinterpret_cast<decltype(a.is_control)>(get("c3spm_is_control"));
    a.train = reinterpret_cast<decltype(a.train)>(get("c3spm_train"));
    return a;
  }();
  return api;
}

void append_bytes(void* context, const char* data, size_t size) {
  static_cast<std::string*>(context)->append(data, size);
}

void append_ids(void* context, const int* ids, size_t count) {
  auto* out = static_cast<std::vector<int32_t>*>(context);
  out->insert(out->end(), ids, ids + count);
}

}  // namespace

SentencePieceTokenizer::SentencePieceTokenizer(const fs::path& model_file) : source_(model_file.string()) {
  std::error_code ec;
  if (!fs::is_regular_file(model_file, ec)) fail_file(source_, "no such file");
  std::string error;
  if (spm().load(model_file.c_str(), &handle_, append_bytes, &error) != 0)
    fail_file(source_, "not a sentencepiece model (" + error + ")");
}

SentencePieceTokenizer::~SentencePieceTokenizer() {
  if (handle_) spm().free(handle_);
}

std::vector<int32_t> SentencePieceTokenizer::encode(std::string_view text) const {
  std::string repaired;
  text = unicode::valid_utf8_or_repaired(text, repaired);
  std::vector<int32_t> ids;
  std::string error;
  if (spm().encode(handle_, text.data(), text.size(), append_ids, &ids, append_bytes, &error) != 0)
    throw Error(source_ + ": encoding failed (" + error + ")");
  return ids;
}

std::vector<int32_t> SentencePieceTokenizer::encode_text(std::string_view text) const {
  std::vector<int32_t> out;
  for (int32_t id : encode(text)) {
    if (!is_special(id) || spm().is_control(handle_, id)) {
      out.push_back(id);
      continue;
    }
    std::string piece;
    spm().id_to_piece(handle_, id, append_bytes, &piece);
    for (unsigned char byte : piece) {
      const std::string name = fmt::format("<0x{:02X}>", byte);
      const int byte_id = spm().piece_to_id(handle_, name.data(), name.size());
      if (byte_id < 0) fail_file(source_, "has no byte piece " + name + " (trained without byte fallback?)");
      out.push_back(byte_id);
    }
  }
  return out;
}

bool SentencePieceTokenizer::is_special(int32_t id) const {
  if (spm().is_control(handle_, id)) return true;  // <s>, </s>
  std::string piece;
  spm().id_to_piece(handle_, id, append_bytes, &piece);
  for (const auto& s : c3_special_tokens())
    if (piece == s) return true;
  return false;
}

std::string SentencePieceTokenizer::decode(const std::vector<int32_t>& ids, bool skip_special) const {
  std::vector<int> kept;
  for (int32_t id : ids) {
    if (id < 0 || id >= vocab_size())
      throw Error(source_ + ": token id " + std::to_string(id) + " is not in the vocabulary");
    if (skip_special && is_special(id)) continue;
    kept.push_back(id);
  }
  std::string text, error;
  if (spm().decode(handle_, kept.data(), kept.size(), append_bytes, &text, append_bytes, &error) != 0)
    throw Error(source_ + ": decoding failed (" + error + ")");
  return unicode::replace_invalid_utf8(text);
}

std::optional<int32_t> SentencePieceTokenizer::token_id(std::string_view token) const {
  const int id = spm().piece_to_id(handle_, token.data(), token.size());
  if (id < 0) return std::nullopt;
  return id;
}

int64_t SentencePieceTokenizer::vocab_size() const { return spm().piece_size(handle_); }

namespace {

// sentencepiece's status text ("Internal: src/trainer_interface.cc(660) [...] Vocabulary size is too
// high (16000). Please set it to a value <= 2395.") as what to do about it.
std::string training_error(const std::string& error, int64_t vocab_size) {
  static const std::regex too_high(R"(Vocabulary size (is )?too high \((\d+)\)\. Please set it to a value <= (\d+))");
  std::smatch m;
  if (std::regex_search(error, m, too_high))
    return "--vocab-size " + std::to_string(vocab_size) + " is more than this text can fill: at most " + m[3].str() +
           " pieces (give --vocab-size " + m[3].str() + " or less, or more text)";
  // Otherwise its message without the status code and source location.
  static const std::regex location(R"(^[A-Za-z ]+: (\S+\(\d+\) )?(\[[^\]]*\] )?)");
  return std::regex_replace(error, location, "");
}

}  // namespace

void train_sentencepiece(const SentencePieceTrainOptions& o, const fs::path& dir) {
  if (o.inputs.empty()) throw UsageError("tokenizer train: no --input files");
  std::string inputs;
  for (const auto& f : o.inputs) {
    std::error_code ec;
    if (!fs::is_regular_file(f, ec)) fail_file(f.string(), "no such file");
    if (f.string().find_first_of(", ") != std::string::npos)
      fail_file(f.string(), "input paths cannot contain commas or spaces (sentencepiece's argument syntax)");
    inputs += (inputs.empty() ? "" : ",") + f.string();
  }
  if (o.model_type != "bpe" && o.model_type != "unigram")
    throw UsageError("--model-type " + o.model_type + ": choose bpe or unigram");
  if (o.vocab_size < 16) throw UsageError("--vocab-size must be at least 16");
  std::string symbols;
  for (const auto& s : c3_special_tokens()) symbols += (symbols.empty() ? "" : ",") + s;
  AtomicDirectory out(dir, o.overwrite);
  if (out.staging().string().find(' ') != std::string::npos)
    fail_file(dir.string(), "output paths cannot contain spaces (sentencepiece's argument syntax)");
  const std::string args = "--input=" + inputs + " --model_prefix=" + (out.staging() / "tokenizer").string() +
                           " --vocab_size=" + std::to_string(o.vocab_size) + " --model_type=" + o.model_type +
                           " --character_coverage=" + std::to_string(o.character_coverage) +
                           " --user_defined_symbols=" + symbols + " --byte_fallback=true" +
                           // Text must come back byte for byte: the default nmt_nfkc rule turns
                           // newlines into spaces, which would break the C3 prompt template.
                           " --normalization_rule_name=identity --remove_extra_whitespaces=false" +
                           " --allow_whitespace_only_pieces=true" +
                           " --num_threads=" + std::to_string(std::max(1, o.threads)) +
                           " --input_sentence_size=2000000 --shuffle_input_sentence=true --minloglevel=1";
  spdlog::info("training a {} sentencepiece model, vocabulary {}", o.model_type, o.vocab_size);
  std::string error, log;
  const int failed = spm().train(args.c_str(), append_bytes, &log, append_bytes, &error);
  std::istringstream lines(log);
  for (std::string line; std::getline(lines, line);) spdlog::debug("sentencepiece: {}", line);
  if (failed) throw Error("tokenizer train: " + training_error(error, o.vocab_size));
  out.commit();
}

}  // namespace c3
