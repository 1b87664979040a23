// Loading BpeTokenizer from the three file layouts checkpoints carry.
#include <nlohmann/json.hpp>

#include <fstream>
#include <sstream>

#include "c3/io/checkpoint_dir.h"
#include "c3/tokenizer/bpe.h"
#include "c3/tokenizer/unicode.h"
#include "c3/util/atomic_file.h"
#include "c3/util/error.h"

namespace fs = std::filesystem;
using nlohmann::json;

namespace c3 {
namespace {

// A token id read from `file` (a JSON value or text), checked against kMaxTokenId.
int32_t checked_token_id(const json& value, const std::string& file, const std::string& what) {
  if (!value.is_number_integer() || value.get<int64_t>() < 0 || value.get<int64_t>() > kMaxTokenId)
    fail_file(file,
              what + " has id " + value.dump() + ", expected an integer from 0 to " + std::to_string(kMaxTokenId));
  return static_cast<int32_t>(value.get<int64_t>());
}

// vocab object (spelled token -> id) -> raw token bytes by id.
// byte_level: tokens are spelled in GPT-2's byte alphabet and kept as the bytes they stand for.
std::vector<std::string> read_vocab(const json& vocab, const std::string& file,
                                    std::unordered_map<std::string, int32_t>* spelled_ids, bool byte_level = true) {
  if (!vocab.is_object()) fail_file(file, "vocabulary is not a JSON object of token -> id");
  std::vector<std::string> tokens;
  for (auto it = vocab.begin(); it != vocab.end(); ++it) {
    const int32_t id = checked_token_id(it.value(), file, "token '" + it.key() + "'");
    std::string bytes = it.key();
    if (byte_level && (!unicode::unicode_to_bytes(it.key(), &bytes) || bytes.empty()))
      fail_file(file, "token '" + it.key() + "' is not spelled in the byte-level alphabet");
    if (bytes.empty()) fail_file(file, "the vocabulary has an empty token");
    if (static_cast<size_t>(id) >= tokens.size()) tokens.resize(id + 1);
    if (!tokens[id].empty()) fail_file(file, "id " + std::to_string(id) + " is given to two tokens");
    tokens[id] = bytes;
    (*spelled_ids)[it.key()] = id;
  }
  return tokens;
}

// One merge, spelled "left right" or ["left", "right"] -> ids. It makes left + right less the
// continuing_subword_prefix `prefix` (as spelled), which must be a token too.
std::pair<int32_t, int32_t> merge_ids(const std::string& left, const std::string& right,
                                      const std::unordered_map<std::string, int32_t>& ids, const std::string& where,
                                      const std::string& prefix = "") {
  auto l = ids.find(left), r = ids.find(right);
  if (l == ids.end()) fail_file(where, "merge names '" + left + "', which is not in the vocabulary");
  if (r == ids.end()) fail_file(where, "merge names '" + right + "', which is not in the vocabulary");
  if (right.size() < prefix.size() || !ids.count(left + right.substr(prefix.size())))
    fail_file(where, "merge '" + left + " " + right + "' produces a token missing from the vocabulary");
  return {l->second, r->second};
}

std::vector<AddedToken> read_added_tokens(const json& list, const std::string& file) {
  std::vector<AddedToken> out;
  if (!list.is_array()) fail_file(file, "added_tokens is not a list");
  for (const auto& t : list) {
    if (!t.is_object() || !t.contains("id") || !t.contains("content") || !t["content"].is_string())
      fail_file(file, "added token entry needs an integer id and a string content: " + t.dump());
    const std::string content = t["content"].get<std::string>();
    const int32_t id = checked_token_id(t["id"], file, "added token '" + content + "'");
    if (t.value("single_word", false))
      fail_file(file, "added token '" + content + "': single_word=true is not supported");
    const bool special = t.value("special", false);
    out.push_back(
        {content, id, special, t.value("normalized", !special), t.value("lstrip", false), t.value("rstrip", false)});
  }
  return out;
}

// The model's options, checked: what c3 does not implement is refused by name.
BpeOptions bpe_options(const json& model, const std::unordered_map<std::string, int32_t>& ids, bool byte_level,
                       const std::string& file) {
  BpeOptions o;
  o.ignore_merges = model.value("ignore_merges", false);
  o.byte_fallback = model.value("byte_fallback", false);
  o.fuse_unk = model.value("fuse_unk", false);
  if (o.byte_fallback && byte_level)
    fail_file(file, "byte_fallback=true with a ByteLevel pre-tokenizer is not supported");
  if (model.contains("dropout") && model["dropout"].is_number() && model["dropout"].get<double>() > 0)
    fail_file(file, "BPE dropout " + model["dropout"].dump() + " is not supported (it makes encoding random)");
  if (model.contains("unk_token") && model["unk_token"].is_string()) {
    auto it = ids.find(model["unk_token"].get<std::string>());
    if (it == ids.end())
      fail_file(file, "unk_token '" + model["unk_token"].get<std::string>() + "' is not in the vocabulary");
    o.unk = it->second;
  }
  for (auto [key, field] : {std::pair{"continuing_subword_prefix", &o.continuing_subword_prefix},
                            std::pair{"end_of_word_suffix", &o.end_of_word_suffix}}) {
    if (!model.contains(key) || !model[key].is_string()) continue;
    *field = model[key].get<std::string>();
    if (byte_level && !unicode::unicode_to_bytes(model[key].get<std::string>(), field))
      fail_file(file, std::string(key) + " '" + model[key].get<std::string>() +
                          "' is not spelled in the byte-level alphabet");
  }
  return o;
}

std::string base64_decode(std::string_view in, const std::string& where) {
  static const std::array<int, 256> table = [] {
    std::array<int, 256> t{};
    t.fill(-1);
    const char* alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    for (int i = 0; i < 64; ++i) t[static_cast<unsigned char>(alphabet[i])] = i;
    return t;
  }();
  if (in.empty() || in.size() % 4 != 0) fail_file(where, "bad base64 '" + std::string(in) + "'");
  std::string out;
  for (size_t i = 0; i < in.size(); i += 4) {
    int v[4];
    for (int k = 0; k < 4; ++k) {
      const char c = in[i + k];
      const bool pad_ok = c == '=' && i + 4 == in.size() && k >= 2 && (k == 3 || in[i + 3] == '=');
      v[k] = c == '=' && pad_ok ? 0 : table[static_cast<unsigned char>(c)];
      if (v[k] < 0 || (c == '=' && !pad_ok)) fail_file(where, "bad base64 '" + std::string(in) + "'");
    }
    out += static_cast<char>((v[0] << 2) | (v[1] >> 4));
    if (in[i + 2] != '=') out += static_cast<char>(((v[1] & 15) << 4) | (v[2] >> 2));
    if (in[i + 3] != '=') out += static_cast<char>(((v[2] & 3) << 6) | v[3]);
  }
  return out;
}

}  // namespace

std::unique_ptr<BpeTokenizer> BpeTokenizer::from_tokenizer_json(const fs::path& path) {
  return io::with_json_errors(path.string(), [&] { return tokenizer_json(path); });
}

std::unique_ptr<BpeTokenizer> BpeTokenizer::tokenizer_json(const fs::path& path) {
  const std::string file = path.string();
  const json doc = io::read_json_file(path);
  if (!doc.is_object() || !doc.contains("model") || !doc["model"].is_object())
    fail_file(file, "no 'model' object: not a Hugging Face tokenizer.json");
  const json& model = doc["model"];
  if (model.value("type", "BPE") != "BPE")
    fail_file(file, "model type '" + model.value("type", std::string()) + "' is not supported (c3 has BPE)");
  TextPipeline pipeline = TextPipeline::from_tokenizer_json(doc, file);
  std::unordered_map<std::string, int32_t> ids;
  auto tokens = read_vocab(model.value("vocab", json()), file, &ids, pipeline.byte_level());
  BpeOptions options = bpe_options(model, ids, pipeline.byte_level(), file);
  const std::string prefix = model.value("continuing_subword_prefix", json()).is_string()
                                 ? model["continuing_subword_prefix"].get<std::string>()
                                 : "";
  std::vector<std::pair<int32_t, int32_t>> merges;
  const json list = model.value("merges", json::array());
  if (!list.is_array()) fail_file(file, "model.merges is not a list");
  for (size_t i = 0; i < list.size(); ++i) {
    const json& m = list[i];
    const std::string where = file + ": merge " + std::to_string(i);
    if (m.is_string()) {
      const std::string s = m.get<std::string>();
      const auto space = s.find(' ');
      if (space == std::string::npos || s.find(' ', space + 1) != std::string::npos)
        fail_file(where, "'" + s + "' is not 'left right'");
      merges.push_back(merge_ids(s.substr(0, space), s.substr(space + 1), ids, where, prefix));
    } else if (m.is_array() && m.size() == 2 && m[0].is_string() && m[1].is_string()) {
      merges.push_back(merge_ids(m[0].get<std::string>(), m[1].get<std::string>(), ids, where, prefix));
    } else {
      fail_file(where, "is neither 'left right' nor [left, right]");
    }
  }
  auto added = read_added_tokens(doc.value("added_tokens", json::array()), file);
  return std::make_unique<BpeTokenizer>(std::move(tokens), merges, std::move(added), std::move(pipeline),
                                        std::move(options), file);
}

std::unique_ptr<BpeTokenizer> BpeTokenizer::from_vocab_merges(const fs::path& vocab_path, const fs::path& merges_path) {
  std::unordered_map<std::string, int32_t> ids;
  auto tokens = read_vocab(io::read_json_file(vocab_path), vocab_path.string(), &ids);
  std::istringstream lines(read_text_file(merges_path, kMaxMetadataFileBytes));
  std::vector<std::pair<int32_t, int32_t>> merges;
  std::string line;
  for (size_t n = 1; std::getline(lines, line); ++n) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if ((n == 1 && line.rfind("#version", 0) == 0) || line.empty()) continue;
    const std::string where = merges_path.string() + ":" + std::to_string(n);
    const auto space = line.find(' ');
    if (space == std::string::npos || line.find(' ', space + 1) != std::string::npos)
      fail_file(where, "expected 'left right', got '" + line + "'");
    merges.push_back(merge_ids(line.substr(0, space), line.substr(space + 1), ids, where));
  }
  const fs::path dir = vocab_path.parent_path();
  const std::string names = (dir / "tokenizer_config.json").string() + " or added_tokens.json";
  std::vector<AddedToken> added = io::with_json_errors(names, [&] { return added_tokens_beside(dir); });
  const std::string source = vocab_path.string() + " + " + merges_path.filename().string();
  return std::make_unique<BpeTokenizer>(std::move(tokens), merges, std::move(added), TextPipeline::qwen2(source),
                                        BpeOptions{}, source);
}

// tokenizer_config.json's added_tokens_decoder (with special flags), then added_tokens.json
// (content -> id; not special unless the config says so).
std::vector<AddedToken> BpeTokenizer::added_tokens_beside(const fs::path& dir) {
  std::vector<AddedToken> added;
  std::error_code ec;
  if (fs::exists(dir / "tokenizer_config.json", ec)) {
    const auto cfg = io::read_json_file(dir / "tokenizer_config.json");
    const json decoder = cfg.value("added_tokens_decoder", json::object());
    for (auto it = decoder.begin(); it != decoder.end(); ++it) {
      if (!it.value().contains("content") || !it.value()["content"].is_string())
        fail_file((dir / "tokenizer_config.json").string(), "added_tokens_decoder." + it.key() + " has no content");
      json key;
      try {
        key = json::parse(it.key());
      } catch (const json::exception&) {
      }
      const int32_t id = checked_token_id(key, (dir / "tokenizer_config.json").string(),
                                          "added_tokens_decoder key '" + it.key() + "'");
      const bool special = it.value().value("special", false);
      added.push_back({it.value()["content"].get<std::string>(), id, special, it.value().value("normalized", !special),
                       it.value().value("lstrip", false), it.value().value("rstrip", false)});
    }
  }
  if (fs::exists(dir / "added_tokens.json", ec)) {
    const auto map = io::read_json_file(dir / "added_tokens.json");
    if (!map.is_object()) fail_file((dir / "added_tokens.json").string(), "is not an object of token -> id");
    for (auto it = map.begin(); it != map.end(); ++it) {
      const int32_t id = checked_token_id(it.value(), (dir / "added_tokens.json").string(), "'" + it.key() + "'");
      bool known = false;
      for (const auto& a : added) known = known || a.content == it.key();
      if (!known) added.push_back({it.key(), id, false});
    }
  }
  return added;
}

std::unique_ptr<BpeTokenizer> BpeTokenizer::from_tiktoken(const fs::path& path) {
  const std::string file = path.string();
  std::istringstream lines(read_text_file(path, kMaxMetadataFileBytes));
  std::vector<std::string> tokens;
  std::unordered_map<std::string, int32_t> index;
  std::string line;
  for (size_t n = 1; std::getline(lines, line); ++n) {
    if (line.empty()) continue;
    const std::string where = file + ":" + std::to_string(n);
    const auto space = line.find(' ');
    if (space == std::string::npos) fail_file(where, "expected 'base64 rank'");
    const std::string bytes = base64_decode(std::string_view(line).substr(0, space), where);
    int64_t rank = -1;
    try {
      size_t used = 0;
      rank = std::stoll(line.substr(space + 1), &used);
      if (used != line.size() - space - 1) rank = -1;
    } catch (...) {
    }
    if (rank < 0 || rank > kMaxTokenId) fail_file(where, "bad rank '" + line.substr(space + 1) + "'");
    if (static_cast<size_t>(rank) >= tokens.size()) tokens.resize(rank + 1);
    if (!tokens[rank].empty()) fail_file(where, "rank " + std::to_string(rank) + " appears twice");
    if (!index.emplace(bytes, static_cast<int32_t>(rank)).second) fail_file(where, "token appears twice");
    tokens[rank] = bytes;
  }
  // tiktoken cannot encode a byte it has no rank for (it fails); byte-level BPE vocabularies may lack some.
  for (int b = 0; b < 256; ++b)
    if (!index.count(std::string(1, static_cast<char>(b)))) fail_file(file, "no token for byte " + std::to_string(b));
  // tiktoken merges whichever adjacent pair forms the lowest-ranked token; as merges, a token of
  // rank r is the pair that byte-level BPE restricted to ranks < r leaves it in (how HF converts).
  std::vector<std::pair<int32_t, int32_t>> merges;
  std::vector<int32_t> parts;
  for (size_t rank = 0; rank < tokens.size(); ++rank) {
    const std::string& t = tokens[rank];
    if (t.size() < 2) continue;
    parts.clear();
    for (unsigned char c : t) {
      auto it = index.find(std::string(1, static_cast<char>(c)));
      if (it == index.end()) fail_file(file, "no token for byte " + std::to_string(c));
      parts.push_back(it->second);
    }
    while (parts.size() > 2) {
      int32_t best = INT32_MAX;
      size_t at = 0;
      for (size_t i = 0; i + 1 < parts.size(); ++i) {
        auto it = index.find(tokens[parts[i]] + tokens[parts[i + 1]]);
        if (it != index.end() && it->second < best && static_cast<size_t>(it->second) < rank) best = it->second, at = i;
      }
      if (best == INT32_MAX) break;
      parts[at] = best;
      parts.erase(parts.begin() + static_cast<std::ptrdiff_t>(at) + 1);
    }
    if (parts.size() == 2) merges.emplace_back(parts[0], parts[1]);
  }
  // The special-token table of the released C3 (GOT-OCR2.0) tokenizer.
  std::vector<AddedToken> added{
      {"<|endoftext|>", 151643, true}, {"<|im_start|>", 151644, true}, {"<|im_end|>", 151645, true}};
  for (int i = 0; i <= 204; ++i) added.push_back({"<|extra_" + std::to_string(i) + "|>", 151646 + i, true});
  int32_t id = 151851;
  for (const char* t : {"<ref>", "</ref>", "<box>", "</box>", "<quad>", "</quad>", "<img>", "</img>", "<imgpad>"})
    added.push_back({t, id++, true});
  return std::make_unique<BpeTokenizer>(std::move(tokens), merges, std::move(added), TextPipeline::qwen2(file),
                                        BpeOptions{}, file);
}

}  // namespace c3
