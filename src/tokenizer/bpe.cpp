#include "c3/tokenizer/bpe.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <algorithm>
#include <climits>

#include "c3/tokenizer/unicode.h"
#include "c3/util/error.h"

namespace c3 {

const char* const kQwen2Pattern =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
const char* const kGpt2Pattern = R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";

namespace {

uint64_t pair_key(int32_t a, int32_t b) {
  return (static_cast<uint64_t>(static_cast<uint32_t>(a)) << 32) | static_cast<uint32_t>(b);
}

constexpr size_t kMaxCacheEntries = 1 << 18;

}  // namespace

struct ByteLevelBpe::Regex {
  pcre2_code* code = nullptr;
  ~Regex() { pcre2_code_free(code); }
};

ByteLevelBpe::ByteLevelBpe(std::vector<std::string> tokens, const std::vector<std::pair<int32_t, int32_t>>& merges,
                           std::vector<AddedToken> added, const std::string& pattern, bool nfc, std::string source)
    : tokens_(std::move(tokens)), added_(std::move(added)), nfc_(nfc), source_(std::move(source)) {
  for (size_t id = 0; id < tokens_.size(); ++id) {
    if (!tokens_[id].empty()) token_index_.emplace(tokens_[id], static_cast<int32_t>(id));
  }
  // A byte without a token of its own (SmolLM2 has none for most control bytes) is dropped, as HF's
  // BPE drops a character it cannot look up when there is no unk_token: its neighbours still merge.
  for (int b = 0; b < 256; ++b) {
    auto it = token_index_.find(std::string(1, static_cast<char>(b)));
    byte_ids_[b] = it == token_index_.end() ? -1 : it->second;
  }
  for (size_t rank = 0; rank < merges.size(); ++rank) {
    const auto [l, r] = merges[rank];
    auto it = token_index_.find(tokens_[l] + tokens_[r]);
    if (it == token_index_.end())
      fail_file(source_, "merge " + std::to_string(rank) + " produces a token missing from the vocabulary");
    ranks_.emplace(pair_key(l, r), std::make_pair(static_cast<int32_t>(rank), it->second));  // first rank wins
  }
  for (size_t i = 0; i < added_.size(); ++i) {
    const AddedToken& t = added_[i];
    if (t.content.empty() || t.id < 0) fail_file(source_, "added token with an empty content or negative id");
    if (static_cast<size_t>(t.id) >= tokens_.size()) tokens_.resize(t.id + 1);
    tokens_[t.id] = t.content;
    added_by_first_byte_[static_cast<unsigned char>(t.content[0])].push_back(i);
  }
  for (auto& list : added_by_first_byte_) {
    std::sort(list.begin(), list.end(),
              [&](size_t a, size_t b) { return added_[a].content.size() > added_[b].content.size(); });
  }
  is_special_.assign(tokens_.size(), false);
  for (const auto& t : added_) is_special_[t.id] = t.special;

  regex_ = std::make_unique<Regex>();
  int error = 0;
  PCRE2_SIZE offset = 0;
  regex_->code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.c_str()), PCRE2_ZERO_TERMINATED,
                               PCRE2_UTF | PCRE2_UCP, &error, &offset, nullptr);
  if (!regex_->code) {
    PCRE2_UCHAR msg[256];
    pcre2_get_error_message(error, msg, sizeof msg);
    fail_file(source_, "pre-tokenizer regex does not compile at offset " + std::to_string(offset) + ": " +
                           reinterpret_cast<char*>(msg));
  }
  pcre2_jit_compile(regex_->code, PCRE2_JIT_COMPLETE);  // falls back to the interpreter if JIT is unavailable
}

ByteLevelBpe::~ByteLevelBpe() = default;

std::vector<std::pair<int32_t, int32_t>> ByteLevelBpe::merges() const {
  std::vector<std::pair<int32_t, int32_t>> out(ranks_.size());
  for (const auto& [key, value] : ranks_)
    out[value.first] = {static_cast<int32_t>(key >> 32), static_cast<int32_t>(key & 0xffffffffu)};
  return out;
}

std::vector<int32_t> ByteLevelBpe::encode_with(std::string_view text, bool special_tokens) const {
  std::string repaired;
  text = unicode::valid_utf8_or_repaired(text, repaired);
  std::vector<int32_t> out;
  out.reserve(text.size() / 3 + 4);
  size_t segment = 0, pos = 0;
  while (pos < text.size()) {
    const auto& candidates = added_by_first_byte_[static_cast<unsigned char>(text[pos])];
    const AddedToken* hit = nullptr;
    for (size_t i : candidates) {
      if (added_[i].special && !special_tokens) continue;
      const std::string& c = added_[i].content;
      if (text.compare(pos, c.size(), c) == 0) {
        hit = &added_[i];
        break;  // longest first
      }
    }
    if (!hit) {
      ++pos;
      continue;
    }
    encode_ordinary(text.substr(segment, pos - segment), out);
    out.push_back(hit->id);
    pos += hit->content.size();
    segment = pos;
  }
  encode_ordinary(text.substr(segment), out);
  return out;
}

void ByteLevelBpe::encode_ordinary(std::string_view text, std::vector<int32_t>& out) const {
  if (text.empty()) return;
  std::string normalized;
  if (nfc_) {
    normalized = unicode::nfc(text);
    text = normalized;
  }
  pcre2_match_data* md = pcre2_match_data_create_from_pattern(regex_->code, nullptr);
  const auto subject = reinterpret_cast<PCRE2_SPTR>(text.data());
  size_t offset = 0, covered = 0;
  while (offset < text.size()) {
    const int rc = pcre2_match(regex_->code, subject, text.size(), offset, PCRE2_NO_UTF_CHECK, md, nullptr);
    if (rc == PCRE2_ERROR_NOMATCH) break;
    if (rc < 0) {  // e.g. JIT stack exhausted: never drop text silently
      pcre2_match_data_free(md);
      PCRE2_UCHAR msg[256];
      pcre2_get_error_message(rc, msg, sizeof msg);
      throw Error(source_ + ": pre-tokenizer regex failed: " + reinterpret_cast<char*>(msg));
    }
    const PCRE2_SIZE* ov = pcre2_get_ovector_pointer(md);
    if (ov[0] > covered) bpe(text.substr(covered, ov[0] - covered), out);  // unmatched span: its own piece
    if (ov[1] == ov[0]) {  // empty match: step over one character
      offset = ov[1] + 1;
      while (offset < text.size() && (static_cast<unsigned char>(text[offset]) & 0xC0) == 0x80) ++offset;
      continue;
    }
    bpe(text.substr(ov[0], ov[1] - ov[0]), out);
    covered = offset = ov[1];
  }
  if (covered < text.size()) bpe(text.substr(covered), out);
  pcre2_match_data_free(md);
}

void ByteLevelBpe::bpe(std::string_view piece, std::vector<int32_t>& out) const {
  if (piece.size() == 1) {
    if (const int32_t id = byte_ids_[static_cast<unsigned char>(piece[0])]; id >= 0) out.push_back(id);
    return;
  }
  const std::string key(piece);
  {
    std::lock_guard<std::mutex> lock(cache_mutex_);
    auto it = cache_.find(key);
    if (it != cache_.end()) {
      out.insert(out.end(), it->second.begin(), it->second.end());
      return;
    }
  }
  std::vector<int32_t> symbols;
  symbols.reserve(piece.size());
  for (unsigned char b : piece)
    if (byte_ids_[b] >= 0) symbols.push_back(byte_ids_[b]);
  std::vector<int32_t> next;
  while (symbols.size() > 1) {
    int32_t best_rank = INT32_MAX, merged = -1;
    uint64_t best = 0;
    for (size_t i = 0; i + 1 < symbols.size(); ++i) {
      auto it = ranks_.find(pair_key(symbols[i], symbols[i + 1]));
      if (it != ranks_.end() && it->second.first < best_rank) {
        best_rank = it->second.first;
        merged = it->second.second;
        best = it->first;
      }
    }
    if (merged < 0) break;
    // Merge every occurrence of the best pair, left to right (what HF's rank queue does).
    next.clear();
    for (size_t i = 0; i < symbols.size(); ++i) {
      if (i + 1 < symbols.size() && pair_key(symbols[i], symbols[i + 1]) == best) {
        next.push_back(merged);
        ++i;
      } else {
        next.push_back(symbols[i]);
      }
    }
    symbols.swap(next);
  }
  out.insert(out.end(), symbols.begin(), symbols.end());
  std::lock_guard<std::mutex> lock(cache_mutex_);
  if (cache_.size() >= kMaxCacheEntries) cache_.clear();
  cache_.emplace(key, std::move(symbols));
}

std::string ByteLevelBpe::decode(const std::vector<int32_t>& ids, bool skip_special) const {
  std::string bytes;
  for (int32_t id : ids) {
    if (id < 0 || static_cast<size_t>(id) >= tokens_.size() || tokens_[id].empty())
      throw Error(source_ + ": token id " + std::to_string(id) + " is not in the vocabulary");
    if (skip_special && is_special_[id]) continue;
    bytes += tokens_[id];
  }
  return unicode::replace_invalid_utf8(bytes);
}

std::optional<int32_t> ByteLevelBpe::token_id(std::string_view token) const {
  for (const auto& t : added_)
    if (t.content == token) return t.id;
  auto it = token_index_.find(std::string(token));
  if (it == token_index_.end()) return std::nullopt;
  return it->second;
}

}  // namespace c3
