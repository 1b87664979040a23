#include "c3/tokenizer/bpe.h"

#include <algorithm>
#include <climits>
#include <cstdio>
#include <queue>

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
// Pre-tokens longer than this merge through a queue (O(n log n)) instead of rescans (O(n^2)).
constexpr size_t kLongPiece = 64;
// Longer pre-tokens are not cached: they rarely repeat, and would fill the cache.
constexpr size_t kMaxCachedPiece = 256;

size_t utf8_length(unsigned char c) { return c < 0x80 ? 1 : c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4; }

// Rust's str::trim_end().len() / trim_start(): Unicode whitespace, as added tokens' lstrip/rstrip use it.
bool white_space_at(std::string_view s, size_t i, size_t* length) {
  const std::u32string c = unicode::code_points(s.substr(i, utf8_length(static_cast<unsigned char>(s[i]))));
  *length = utf8_length(static_cast<unsigned char>(s[i]));
  return !c.empty() && !(c[0] >= 0x1C && c[0] <= 0x1F) && unicode::is_python_space(c[0]);
}

}  // namespace

BpeTokenizer::BpeTokenizer(std::vector<std::string> tokens, const std::vector<std::pair<int32_t, int32_t>>& merges,
                           std::vector<AddedToken> added, TextPipeline pipeline, BpeOptions options, std::string source)
    : tokens_(std::move(tokens)),
      added_(std::move(added)),
      pipeline_(std::move(pipeline)),
      options_(std::move(options)),
      source_(std::move(source)) {
  for (size_t id = 0; id < tokens_.size(); ++id) {
    if (!tokens_[id].empty()) token_index_.emplace(tokens_[id], static_cast<int32_t>(id));
  }
  plain_units_ = pipeline_.byte_level() && !options_.unk && !options_.byte_fallback &&
                 options_.continuing_subword_prefix.empty() && options_.end_of_word_suffix.empty();
  // A byte without a token of its own (SmolLM2 has none for most control bytes) is dropped, as HF's
  // BPE drops a character it cannot look up when there is no unk_token: its neighbours still merge.
  for (int b = 0; b < 256; ++b) {
    auto it = token_index_.find(std::string(1, static_cast<char>(b)));
    byte_ids_[b] = it == token_index_.end() ? -1 : it->second;
  }
  const size_t prefix = options_.continuing_subword_prefix.size();
  for (size_t rank = 0; rank < merges.size(); ++rank) {
    const auto [l, r] = merges[rank];
    const std::string& right = tokens_[r];
    auto it = right.size() < prefix ? token_index_.end() : token_index_.find(tokens_[l] + right.substr(prefix));
    if (it == token_index_.end())
      fail_file(source_, "merge " + std::to_string(rank) + " produces a token missing from the vocabulary");
    ranks_.emplace(pair_key(l, r), std::make_pair(static_cast<int32_t>(rank), it->second));  // first rank wins
  }
  for (size_t i = 0; i < added_.size(); ++i) {
    AddedToken& t = added_[i];
    if (t.content.empty() || t.id < 0) fail_file(source_, "added token with an empty content or negative id");
    if (static_cast<size_t>(t.id) >= tokens_.size()) tokens_.resize(t.id + 1);
    // What it decodes to: a byte-level decoder maps a content spelled in the byte alphabet to bytes.
    std::string bytes;
    tokens_[t.id] = pipeline_.byte_level() && unicode::unicode_to_bytes(t.content, &bytes) ? bytes : t.content;
    AddedIndex& index = t.normalized && pipeline_.normalizes() ? normalized_added_ : raw_added_;
    const std::string text = &index == &normalized_added_ ? pipeline_.normalize(t.content) : t.content;
    if (text.empty()) continue;
    index.by_first_byte[static_cast<unsigned char>(text[0])].emplace_back(text, i);
    index.empty = false;
  }
  for (AddedIndex* index : {&raw_added_, &normalized_added_})
    for (auto& list : index->by_first_byte)
      std::stable_sort(list.begin(), list.end(),
                       [](const auto& a, const auto& b) { return a.first.size() > b.first.size(); });
  is_special_.assign(tokens_.size(), false);
  for (const auto& t : added_) is_special_[t.id] = t.special;
  for (int32_t id : pipeline_.prefix_ids())
    if (static_cast<size_t>(id) >= tokens_.size() || tokens_[id].empty())
      fail_file(source_, "post_processor adds token id " + std::to_string(id) + ", which is not in the vocabulary");
  for (int32_t id : pipeline_.suffix_ids())
    if (static_cast<size_t>(id) >= tokens_.size() || tokens_[id].empty())
      fail_file(source_, "post_processor adds token id " + std::to_string(id) + ", which is not in the vocabulary");
}

BpeTokenizer::~BpeTokenizer() = default;

std::vector<std::pair<int32_t, int32_t>> BpeTokenizer::merges() const {
  std::vector<std::pair<int32_t, int32_t>> out(ranks_.size());
  for (const auto& [key, value] : ranks_)
    out[value.first] = {static_cast<int32_t>(key >> 32), static_cast<int32_t>(key & 0xffffffffu)};
  return out;
}

std::vector<int32_t> BpeTokenizer::with_special_tokens(std::vector<int32_t> ids) const {
  ids.insert(ids.begin(), pipeline_.prefix_ids().begin(), pipeline_.prefix_ids().end());
  ids.insert(ids.end(), pipeline_.suffix_ids().begin(), pipeline_.suffix_ids().end());
  return ids;
}

void BpeTokenizer::split_added(std::string_view text, const AddedIndex& index, bool special_tokens,
                               std::vector<int32_t>& out,
                               const std::function<void(std::string_view, size_t)>& plain) const {
  size_t segment = 0, pos = 0;
  while (pos < text.size() && !index.empty) {
    const AddedToken* hit = nullptr;
    size_t length = 0;
    for (const auto& [content, i] : index.by_first_byte[static_cast<unsigned char>(text[pos])]) {
      if (added_[i].special && !special_tokens) continue;
      if (text.compare(pos, content.size(), content) == 0) {
        hit = &added_[i];
        length = content.size();
        break;  // longest first
      }
    }
    if (!hit) {
      ++pos;
      continue;
    }
    size_t start = pos, end = pos + length, n = 0;
    if (hit->lstrip)
      while (start > segment) {
        size_t c = start - 1;
        while (c > segment && (static_cast<unsigned char>(text[c]) & 0xC0) == 0x80) --c;
        if (!white_space_at(text, c, &n)) break;
        start = c;
      }
    if (hit->rstrip)
      while (end < text.size() && white_space_at(text, end, &n)) end += n;
    plain(text.substr(segment, start - segment), segment);
    out.push_back(hit->id);
    pos = segment = end;
  }
  plain(text.substr(segment), segment);
}

std::vector<int32_t> BpeTokenizer::encode_with(std::string_view text, bool special_tokens) const {
  std::string repaired;
  text = unicode::valid_utf8_or_repaired(text, repaired);
  std::vector<int32_t> out;
  out.reserve(text.size() / 3 + 4);
  split_added(text, raw_added_, special_tokens, out, [&](std::string_view stretch, size_t offset) {
    encode_stretch(stretch, offset == 0, special_tokens, out);
  });
  return out;
}

// One stretch between added tokens matched on the raw text: normalized, split on the added tokens
// matched in normalized text, pre-tokenized, and each pre-token through the model.
void BpeTokenizer::encode_stretch(std::string_view text, bool at_start, bool special_tokens,
                                  std::vector<int32_t>& out) const {
  if (text.empty()) return;
  std::string normalized;
  if (pipeline_.normalizes()) {
    normalized = pipeline_.normalize(text);
    text = normalized;
  }
  const auto pre_tokenize = [&](std::string_view part, size_t offset) {
    pipeline_.pre_tokenize(part, at_start && offset == 0, [&](std::string_view piece) { bpe(piece, out); });
  };
  if (normalized_added_.empty) return pre_tokenize(text, 0);
  split_added(text, normalized_added_, special_tokens, out, pre_tokenize);
}

// The pre-token's units (bytes of a byte-level vocabulary, else characters) as ids, with HF's rules
// for a unit missing from the vocabulary.
void BpeTokenizer::initial_symbols(std::string_view piece, std::vector<int32_t>& symbols) const {
  if (plain_units_) {
    for (unsigned char b : piece)
      if (byte_ids_[b] >= 0) symbols.push_back(byte_ids_[b]);
    return;
  }
  const bool bytes = pipeline_.byte_level();
  std::optional<int32_t> pending_unk;
  std::string unit;
  for (size_t i = 0; i < piece.size();) {
    const size_t n = bytes ? 1 : std::min(utf8_length(static_cast<unsigned char>(piece[i])), piece.size() - i);
    unit.assign(i > 0 ? options_.continuing_subword_prefix : "");
    unit.append(piece.substr(i, n));
    i += n;
    if (i == piece.size()) unit += options_.end_of_word_suffix;
    if (auto it = token_index_.find(unit); it != token_index_.end()) {
      if (pending_unk) symbols.push_back(*pending_unk), pending_unk.reset();
      symbols.push_back(it->second);
      continue;
    }
    if (options_.byte_fallback) {
      std::vector<int32_t> fallback;
      char name[8];
      for (unsigned char b : unit) {
        std::snprintf(name, sizeof name, "<0x%02X>", b);
        if (auto it = token_index_.find(name); it != token_index_.end())
          fallback.push_back(it->second);
        else
          break;
      }
      if (fallback.size() == unit.size()) {
        symbols.insert(symbols.end(), fallback.begin(), fallback.end());
        continue;
      }
    }
    if (options_.unk) {
      if (pending_unk && !options_.fuse_unk) symbols.push_back(*pending_unk);
      pending_unk = options_.unk;
    }
  }
  if (pending_unk) symbols.push_back(*pending_unk);
}

// Merges the lowest-ranked adjacent pair, every occurrence left to right, until none is left: what
// HF's rank queue does, by rescanning (fast for the short pre-tokens of most text).
void BpeTokenizer::merge_short(std::vector<int32_t>& symbols) const {
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
}

// The same merges for a long pre-token (a Metaspace text without spaces split off, one 200 KB word)
// in O(n log n), as HF's Word::merge_all: a queue of (rank, position) over a linked list of symbols.
void BpeTokenizer::merge_long(std::vector<int32_t>& symbols) const {
  const size_t n = symbols.size();
  std::vector<size_t> prev(n), next(n);
  std::vector<bool> alive(n, true);
  for (size_t i = 0; i < n; ++i) prev[i] = i - 1, next[i] = i + 1;  // prev[0] and next[n-1] are out of range
  struct Candidate {
    int32_t rank;
    size_t pos;
    uint64_t pair;
    bool operator>(const Candidate& o) const { return rank != o.rank ? rank > o.rank : pos > o.pos; }
  };
  std::priority_queue<Candidate, std::vector<Candidate>, std::greater<>> queue;
  const auto push = [&](size_t left) {
    if (left >= n || next[left] >= n) return;
    const uint64_t key = pair_key(symbols[left], symbols[next[left]]);
    if (auto it = ranks_.find(key); it != ranks_.end()) queue.push({it->second.first, left, key});
  };
  for (size_t i = 0; i + 1 < n; ++i) push(i);
  while (!queue.empty()) {
    const Candidate top = queue.top();
    queue.pop();
    const size_t right = next[top.pos];
    if (!alive[top.pos] || right >= n || pair_key(symbols[top.pos], symbols[right]) != top.pair) continue;  // stale
    symbols[top.pos] = ranks_.at(top.pair).second;
    alive[right] = false;
    next[top.pos] = next[right];
    if (next[right] < n) prev[next[right]] = top.pos;
    if (top.pos > 0) push(prev[top.pos]);
    push(top.pos);
  }
  size_t kept = 0;
  for (size_t i = 0; i < n; ++i)
    if (alive[i]) symbols[kept++] = symbols[i];
  symbols.resize(kept);
}

void BpeTokenizer::bpe(std::string_view piece, std::vector<int32_t>& out) const {
  if (piece.size() == 1 && plain_units_ && !options_.ignore_merges) {
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
  auto whole = options_.ignore_merges ? token_index_.find(key) : token_index_.end();
  if (whole != token_index_.end()) {
    symbols.push_back(whole->second);
  } else {
    symbols.reserve(piece.size());
    initial_symbols(piece, symbols);
  }
  if (symbols.size() > kLongPiece)
    merge_long(symbols);
  else
    merge_short(symbols);
  out.insert(out.end(), symbols.begin(), symbols.end());
  if (key.size() > kMaxCachedPiece) return;
  std::lock_guard<std::mutex> lock(cache_mutex_);
  if (cache_.size() >= kMaxCacheEntries) cache_.clear();
  cache_.emplace(key, std::move(symbols));
}

std::string BpeTokenizer::decode(const std::vector<int32_t>& ids, bool skip_special) const {
  std::vector<std::string> texts;
  texts.reserve(ids.size());
  for (int32_t id : ids) {
    if (id < 0 || static_cast<size_t>(id) >= tokens_.size() || tokens_[id].empty())
      throw Error(source_ + ": token id " + std::to_string(id) + " is not in the vocabulary");
    if (skip_special && is_special_[id]) continue;
    texts.push_back(tokens_[id]);
  }
  return pipeline_.decode(std::move(texts));
}

std::optional<int32_t> BpeTokenizer::token_id(std::string_view token) const {
  for (const auto& t : added_)
    if (t.content == token) return t.id;
  auto it = token_index_.find(std::string(token));
  if (it == token_index_.end()) return std::nullopt;
  return it->second;
}

}  // namespace c3
