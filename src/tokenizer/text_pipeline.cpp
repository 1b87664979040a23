#include "c3/tokenizer/text_pipeline.h"

#include <utf8proc.h>
#include <nlohmann/json.hpp>

#include <cstdlib>
#include <optional>

#include "c3/tokenizer/bpe.h"
#include "c3/tokenizer/regex.h"
#include "c3/tokenizer/tokenizer.h"
#include "c3/tokenizer/unicode.h"
#include "c3/util/error.h"

using nlohmann::json;

namespace c3 {
namespace {

// How a Split keeps what its pattern matched (tokenizers' SplitDelimiterBehavior).
enum class Behavior { kRemoved, kIsolated, kMergedWithPrevious, kMergedWithNext, kContiguous };
enum class PrependScheme { kAlways, kFirst, kNever };

struct Range {
  size_t start, end;
  bool match;
};

// The UTF-8 length of the character starting with byte `c`.
size_t char_length(unsigned char c) { return c < 0x80 ? 1 : c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4; }

char32_t decode_char(std::string_view s, size_t i) {
  const auto n = char_length(static_cast<unsigned char>(s[i]));
  char32_t cp = static_cast<unsigned char>(s[i]) & (n == 1 ? 0x7F : n == 2 ? 0x1F : n == 3 ? 0x0F : 0x07);
  for (size_t k = 1; k < n && i + k < s.size(); ++k) cp = (cp << 6) | (static_cast<unsigned char>(s[i + k]) & 0x3F);
  return cp;
}

// Rust's char::is_whitespace (the White_Space property).
bool is_white_space(char32_t c) {
  return c != 0x1C && c != 0x1D && c != 0x1E && c != 0x1F && unicode::is_python_space(c);
}

// Rust's char::is_numeric: general categories Nd, Nl, No.
bool is_numeric(char32_t c) {
  const auto cat = utf8proc_category(static_cast<utf8proc_int32_t>(c));
  return cat == UTF8PROC_CATEGORY_ND || cat == UTF8PROC_CATEGORY_NL || cat == UTF8PROC_CATEGORY_NO;
}

// tokenizers' find_matches: `text` tiled by match and non-match ranges, given the matches.
std::vector<Range> tile(std::string_view text, const std::vector<std::pair<size_t, size_t>>& matches) {
  if (text.empty()) return {{0, 0, false}};
  std::vector<Range> out;
  size_t prev = 0;
  for (const auto& [start, end] : matches) {
    if (prev != start) out.push_back({prev, start, false});
    out.push_back({start, end, true});
    prev = end;
  }
  if (prev != text.size()) out.push_back({prev, text.size(), false});
  return out;
}

std::vector<Range> regex_ranges(const Regex& regex, std::string_view text) {
  std::vector<std::pair<size_t, size_t>> matches;
  regex.find_all(text, [&](size_t s, size_t e) { matches.emplace_back(s, e); });
  return tile(text, matches);
}

std::vector<Range> literal_ranges(std::string_view literal, std::string_view text) {
  std::vector<std::pair<size_t, size_t>> matches;
  if (!literal.empty())
    for (size_t at = text.find(literal); at != std::string_view::npos; at = text.find(literal, at + literal.size()))
      matches.emplace_back(at, at + literal.size());
  return tile(text, matches);
}

// Each character for which `pred` holds is a match of its own.
template <typename Pred>
std::vector<Range> char_ranges(std::string_view text, Pred pred) {
  std::vector<std::pair<size_t, size_t>> matches;
  for (size_t i = 0; i < text.size(); i += char_length(static_cast<unsigned char>(text[i])))
    if (pred(decode_char(text, i))) matches.emplace_back(i, i + char_length(static_cast<unsigned char>(text[i])));
  return tile(text, matches);
}

// The pieces a Split keeps, as tokenizers' NormalizedString::split folds the ranges.
std::vector<Range> apply_behavior(std::vector<Range> ranges, Behavior behavior) {
  std::vector<Range> acc;
  bool previous = false;
  switch (behavior) {
    case Behavior::kRemoved:
      for (const Range& r : ranges)
        if (!r.match) acc.push_back(r);
      return acc;
    case Behavior::kIsolated:
      return ranges;
    case Behavior::kContiguous:
      for (const Range& r : ranges) {
        if (r.match == previous && !acc.empty())
          acc.back().end = r.end;
        else
          acc.push_back(r);
        previous = r.match;
      }
      return acc;
    case Behavior::kMergedWithPrevious:
      for (const Range& r : ranges) {
        if (r.match && !previous && !acc.empty())
          acc.back().end = r.end;
        else
          acc.push_back(r);
        previous = r.match;
      }
      return acc;
    case Behavior::kMergedWithNext:
      for (auto it = ranges.rbegin(); it != ranges.rend(); ++it) {
        if (it->match && !previous && !acc.empty())
          acc.back().start = it->start;
        else
          acc.push_back(*it);
        previous = it->match;
      }
      return {acc.rbegin(), acc.rend()};
  }
  return acc;
}

std::string replace_all(std::string_view text, const std::vector<Range>& ranges, std::string_view content) {
  std::string out;
  for (const Range& r : ranges) out += r.match ? content : text.substr(r.start, r.end - r.start);
  return out;
}

std::string utf8proc_normalize(std::string_view s, int options) {
  utf8proc_uint8_t* out = nullptr;
  const auto n =
      utf8proc_map(reinterpret_cast<const utf8proc_uint8_t*>(s.data()), static_cast<utf8proc_ssize_t>(s.size()), &out,
                   static_cast<utf8proc_option_t>(UTF8PROC_STABLE | options));
  if (n < 0) throw Error(std::string("Unicode normalisation failed: ") + utf8proc_errmsg(n));
  std::string result(reinterpret_cast<char*>(out), static_cast<size_t>(n));
  std::free(out);
  return result;
}

std::string lowercase(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); i += char_length(static_cast<unsigned char>(s[i]))) {
    const char32_t lower = static_cast<char32_t>(utf8proc_tolower(static_cast<utf8proc_int32_t>(decode_char(s, i))));
    out += unicode::to_utf8(std::u32string_view(&lower, 1));
  }
  return out;
}

// A tokenizers pattern: {"String": "..."} or {"Regex": "..."}; exactly one of the outputs is set.
void read_pattern(const json& step, const std::string& file, std::string* literal, std::shared_ptr<Regex>* regex) {
  const json pattern = step.value("pattern", json());
  if (pattern.is_object() && pattern.contains("String") && pattern["String"].is_string()) {
    *literal = pattern["String"].get<std::string>();
  } else if (pattern.is_object() && pattern.contains("Regex") && pattern["Regex"].is_string()) {
    *regex = std::make_shared<Regex>(pattern["Regex"].get<std::string>(), file);
  } else {
    fail_file(file, step.value("type", std::string("?")) + " needs a pattern {\"String\": ...} or {\"Regex\": ...}");
  }
}

std::string string_field(const json& step, const char* key, const std::string& file, const std::string& fallback = "") {
  if (!step.contains(key) || step[key].is_null()) return fallback;
  if (!step[key].is_string()) fail_file(file, step.value("type", std::string("?")) + "." + key + " is not a string");
  return step[key].get<std::string>();
}

// Metaspace's replacement: one character.
std::string replacement_char(const json& step, const std::string& file) {
  const std::string r = string_field(step, "replacement", file, "\xE2\x96\x81");
  if (r.empty() || char_length(static_cast<unsigned char>(r[0])) != r.size())
    fail_file(file, "Metaspace replacement '" + r + "' is not one character");
  return r;
}

PrependScheme prepend_scheme(const json& step, const std::string& file) {
  if (step.contains("prepend_scheme") && step["prepend_scheme"].is_string()) {
    const std::string s = step["prepend_scheme"].get<std::string>();
    if (s == "always") return PrependScheme::kAlways;
    if (s == "first") return PrependScheme::kFirst;
    if (s == "never") return PrependScheme::kNever;
    fail_file(file, "Metaspace prepend_scheme '" + s + "' is not always, first or never");
  }
  return step.value("add_prefix_space", true) ? PrependScheme::kAlways
                                              : PrependScheme::kNever;  // before prepend_scheme
}

// The steps of `node` in order: a Sequence's members (nested ones too), else the node itself.
void flatten(const json& node, const char* members, const std::string& file, std::vector<json>* out) {
  if (node.is_null()) return;
  if (!node.is_object() || !node.contains("type") || !node["type"].is_string())
    fail_file(file, "a tokenizer step without a type: " + node.dump().substr(0, 80));
  if (node["type"] == "Sequence") {
    if (!node.contains(members) || !node[members].is_array())
      fail_file(file, std::string("Sequence without ") + members);
    for (const json& m : node[members]) flatten(m, members, file, out);
  } else {
    out->push_back(node);
  }
}

int32_t special_id(const json& value, const std::string& file) {
  if (!value.is_number_integer() || value.get<int64_t>() < 0 || value.get<int64_t>() > kMaxTokenId)
    fail_file(file, "post_processor special token id " + value.dump() + " is not a token id");
  return static_cast<int32_t>(value.get<int64_t>());
}

}  // namespace

struct TextPipeline::Normalizer {
  enum Kind { kNfc, kNfd, kNfkc, kNfkd, kLowercase, kReplace, kPrepend, kStrip } kind;
  std::string literal;               // Replace: its String pattern; Prepend: what it prepends
  std::shared_ptr<Regex> regex;      // Replace: its Regex pattern
  std::string content;               // Replace: the replacement
  bool left = false, right = false;  // Strip

  std::string apply(std::string text) const {
    switch (kind) {
      case kNfc:
        return unicode::nfc(text);
      case kNfd:
        return utf8proc_normalize(text, UTF8PROC_DECOMPOSE);
      case kNfkc:
        return utf8proc_normalize(text, UTF8PROC_COMPOSE | UTF8PROC_COMPAT);
      case kNfkd:
        return utf8proc_normalize(text, UTF8PROC_DECOMPOSE | UTF8PROC_COMPAT);
      case kLowercase:
        return lowercase(text);
      case kReplace:
        return replace_all(text, regex ? regex_ranges(*regex, text) : literal_ranges(literal, text), content);
      case kPrepend:
        return text.empty() ? text : literal + text;
      case kStrip: {
        size_t b = 0, e = text.size();
        while (left && b < e && is_white_space(decode_char(text, b)))
          b += char_length(static_cast<unsigned char>(text[b]));
        while (right && e > b) {
          size_t c = e - 1;
          while (c > b && (static_cast<unsigned char>(text[c]) & 0xC0) == 0x80) --c;
          if (!is_white_space(decode_char(text, c))) break;
          e = c;
        }
        return text.substr(b, e - b);
      }
    }
    return text;
  }
};

struct TextPipeline::PreTokenizer {
  enum Kind { kSplit, kByteLevel, kDigits, kMetaspace, kWhitespace, kWhitespaceSplit } kind;
  std::shared_ptr<Regex> regex;  // Split (Regex), ByteLevel (use_regex), Whitespace
  std::string literal;           // Split (String); Metaspace: the replacement character
  Behavior behavior = Behavior::kIsolated;
  bool invert = false;
  bool add_prefix_space = false;                  // ByteLevel
  PrependScheme scheme = PrependScheme::kAlways;  // Metaspace
  bool split = true;                              // Metaspace

  std::vector<Range> ranges(std::string_view text) const {
    std::vector<Range> r;
    switch (kind) {
      case kDigits:
        r = char_ranges(text, is_numeric);
        break;
      case kWhitespaceSplit:
        r = char_ranges(text, is_white_space);
        break;
      case kMetaspace:
        r = literal_ranges(literal, text);
        break;
      default:
        r = regex ? regex_ranges(*regex, text) : literal_ranges(literal, text);
    }
    if (invert)
      for (Range& x : r) x.match = !x.match;
    return apply_behavior(std::move(r), behavior);
  }
};

struct TextPipeline::Decoder {
  enum Kind { kByteLevel, kMetaspace, kByteFallback, kFuse, kStrip, kReplace, kBpe, kWordPiece } kind;
  std::string literal;  // Metaspace replacement; Strip content; Replace String; BPEDecoder suffix; WordPiece prefix
  std::shared_ptr<Regex> regex;                   // Replace (Regex)
  std::string content;                            // Replace
  size_t start = 0, stop = 0;                     // Strip
  PrependScheme scheme = PrependScheme::kAlways;  // Metaspace
  bool cleanup = false;                           // WordPiece

  void apply(std::vector<std::string>& tokens) const;
};

namespace {

// ByteFallback: runs of <0xXX> tokens become their bytes (one U+FFFD per token if not UTF-8).
void byte_fallback(std::vector<std::string>& tokens) {
  std::vector<std::string> out;
  std::string bytes;
  size_t count = 0;
  auto flush = [&] {
    if (count == 0) return;
    if (unicode::is_valid_utf8(bytes))
      out.push_back(bytes);
    else
      for (size_t i = 0; i < count; ++i) out.emplace_back("\xEF\xBF\xBD");
    bytes.clear();
    count = 0;
  };
  for (std::string& t : tokens) {
    const bool hex = t.size() == 6 && t.compare(0, 3, "<0x") == 0 && t[5] == '>' &&
                     std::isxdigit(static_cast<unsigned char>(t[3])) && std::isxdigit(static_cast<unsigned char>(t[4]));
    if (hex) {
      bytes += static_cast<char>(std::strtol(t.substr(3, 2).c_str(), nullptr, 16));
      ++count;
    } else {
      flush();
      out.push_back(std::move(t));
    }
  }
  flush();
  tokens.swap(out);
}

// The WordPiece decoder's cleanup of tokenization spaces (tokenizers' decoders::wordpiece::cleanup).
std::string cleanup_spaces(std::string s) {
  static const std::pair<const char*, const char*> rules[] = {
      {" .", "."},   {" ?", "?"},           {" !", "!"},   {" ,", ","},     {" ' ", "'"},   {" n't", "n't"},
      {" 'm", "'m"}, {" do not", " don't"}, {" 's", "'s"}, {" 've", "'ve"}, {" 're", "'re"}};
  for (const auto& [from, to] : rules) s = replace_all(s, literal_ranges(from, s), to);
  return s;
}

}  // namespace

void TextPipeline::Decoder::apply(std::vector<std::string>& tokens) const {
  switch (kind) {
    case kByteLevel: {  // tokens are already bytes; joined, ill-formed UTF-8 replaced
      std::string all;
      for (const auto& t : tokens) all += t;
      tokens.assign(1, unicode::replace_invalid_utf8(all));
      return;
    }
    case kMetaspace:
      for (size_t i = 0; i < tokens.size(); ++i) {
        std::string out;
        for (size_t at = 0, found; at <= tokens[i].size(); at = found + literal.size()) {
          found = tokens[i].find(literal, at);
          out.append(tokens[i], at, (found == std::string::npos ? tokens[i].size() : found) - at);
          if (found == std::string::npos) break;
          if (!(i == 0 && scheme != PrependScheme::kNever)) out += ' ';
        }
        tokens[i] = std::move(out);
      }
      return;
    case kByteFallback:
      byte_fallback(tokens);
      return;
    case kFuse: {
      std::string all;
      for (const auto& t : tokens) all += t;
      tokens.assign(1, std::move(all));
      return;
    }
    case kStrip:
      for (std::string& t : tokens) {
        size_t b = 0, e = t.size();
        for (size_t n = 0; n < start && t.compare(b, literal.size(), literal) == 0 && b < e; ++n) b += literal.size();
        for (size_t n = 0;
             n < stop && e >= b + literal.size() && t.compare(e - literal.size(), literal.size(), literal) == 0; ++n)
          e -= literal.size();
        t = t.substr(b, e - b);
      }
      return;
    case kReplace:
      for (std::string& t : tokens)
        t = replace_all(t, regex ? regex_ranges(*regex, t) : literal_ranges(literal, t), content);
      return;
    case kBpe:
      for (size_t i = 0; i < tokens.size(); ++i)
        tokens[i] = replace_all(tokens[i], literal_ranges(literal, tokens[i]), i + 1 == tokens.size() ? "" : " ");
      return;
    case kWordPiece:
      for (size_t i = 0; i < tokens.size(); ++i) {
        if (i != 0) {
          if (tokens[i].compare(0, literal.size(), literal) == 0)
            tokens[i].erase(0, literal.size());
          else
            tokens[i].insert(0, " ");
        }
        if (cleanup) tokens[i] = cleanup_spaces(std::move(tokens[i]));
      }
      return;
  }
}

TextPipeline::TextPipeline() = default;
TextPipeline::TextPipeline(TextPipeline&&) noexcept = default;
TextPipeline& TextPipeline::operator=(TextPipeline&&) noexcept = default;
TextPipeline::~TextPipeline() = default;

TextPipeline TextPipeline::qwen2(const std::string& file) {
  TextPipeline p;
  p.normalizers_.push_back({Normalizer::kNfc});
  PreTokenizer split{PreTokenizer::kSplit};
  split.regex = std::make_shared<Regex>(kQwen2Pattern, file);
  p.pre_tokenizers_.push_back(split);
  p.pre_tokenizers_.push_back({PreTokenizer::kByteLevel});
  p.decoders_.push_back({Decoder::kByteLevel});
  p.has_decoder_ = p.byte_level_ = true;
  return p;
}

TextPipeline TextPipeline::from_tokenizer_json(const json& doc, const std::string& file) {
  TextPipeline p;
  std::vector<json> steps;
  flatten(doc.value("normalizer", json()), "normalizers", file, &steps);
  for (const json& s : steps) {
    const std::string type = s["type"];
    Normalizer n{Normalizer::kNfc};
    if (type == "NFC")
      n.kind = Normalizer::kNfc;
    else if (type == "NFD")
      n.kind = Normalizer::kNfd;
    else if (type == "NFKC")
      n.kind = Normalizer::kNfkc;
    else if (type == "NFKD")
      n.kind = Normalizer::kNfkd;
    else if (type == "Lowercase")
      n.kind = Normalizer::kLowercase;
    else if (type == "Replace") {
      n.kind = Normalizer::kReplace;
      read_pattern(s, file, &n.literal, &n.regex);
      n.content = string_field(s, "content", file);
    } else if (type == "Prepend") {
      n.kind = Normalizer::kPrepend;
      n.literal = string_field(s, "prepend", file);
    } else if (type == "Strip") {
      n.kind = Normalizer::kStrip;
      n.left = s.value("strip_left", true);
      n.right = s.value("strip_right", true);
    } else {
      fail_file(file, "normalizer '" + type +
                          "' is not supported (c3 has NFC, NFD, NFKC, NFKD, Lowercase, Replace, "
                          "Prepend, Strip, Sequence)");
    }
    p.normalizers_.push_back(std::move(n));
  }

  steps.clear();
  flatten(doc.value("pre_tokenizer", json()), "pretokenizers", file, &steps);
  for (const json& s : steps) {
    const std::string type = s["type"];
    PreTokenizer t{PreTokenizer::kSplit};
    if (type == "Split") {
      read_pattern(s, file, &t.literal, &t.regex);
      const std::string b = string_field(s, "behavior", file, "Isolated");
      if (b == "Removed")
        t.behavior = Behavior::kRemoved;
      else if (b == "Isolated")
        t.behavior = Behavior::kIsolated;
      else if (b == "MergedWithPrevious")
        t.behavior = Behavior::kMergedWithPrevious;
      else if (b == "MergedWithNext")
        t.behavior = Behavior::kMergedWithNext;
      else if (b == "Contiguous")
        t.behavior = Behavior::kContiguous;
      else
        fail_file(file, "Split behavior '" + b + "' is not one of tokenizers' five");
      t.invert = s.value("invert", false);
    } else if (type == "ByteLevel") {
      t.kind = PreTokenizer::kByteLevel;
      t.add_prefix_space = s.value("add_prefix_space", true);
      if (s.value("use_regex", true)) t.regex = std::make_shared<Regex>(kGpt2Pattern, file);
      p.byte_level_ = true;
      if (!t.add_prefix_space && !t.regex) continue;  // splits nothing: the bytes are the model's business
    } else if (type == "Digits") {
      t.kind = PreTokenizer::kDigits;
      t.behavior = s.value("individual_digits", false) ? Behavior::kIsolated : Behavior::kContiguous;
    } else if (type == "Metaspace") {
      t.kind = PreTokenizer::kMetaspace;
      t.literal = replacement_char(s, file);
      t.scheme = prepend_scheme(s, file);
      t.split = s.value("split", true);
      t.behavior = Behavior::kMergedWithNext;
    } else if (type == "Whitespace") {
      // \w+|[^\w\s]+ with Oniguruma's Unicode \w (UTS #18: Alphabetic, marks, decimal digits,
      // connector punctuation, joiners), which PCRE2's \w is not.
      t.regex = std::make_shared<Regex>(R"([\p{Alphabetic}\p{M}\p{Nd}\p{Pc}\p{Join_Control}]+|)"
                                        R"([^\p{Alphabetic}\p{M}\p{Nd}\p{Pc}\p{Join_Control}\s]+)",
                                        file);
      t.invert = true;
      t.behavior = Behavior::kRemoved;
    } else if (type == "WhitespaceSplit") {
      t.kind = PreTokenizer::kWhitespaceSplit;
      t.behavior = Behavior::kRemoved;
    } else {
      fail_file(file, "pre_tokenizer '" + type +
                          "' is not supported (c3 has Split, ByteLevel, Digits, Metaspace, "
                          "Whitespace, WhitespaceSplit, Sequence)");
    }
    p.pre_tokenizers_.push_back(std::move(t));
  }

  steps.clear();
  flatten(doc.value("decoder", json()), "decoders", file, &steps);
  p.has_decoder_ = !doc.value("decoder", json()).is_null();
  for (const json& s : steps) {
    const std::string type = s["type"];
    Decoder d{Decoder::kByteLevel};
    if (type == "ByteLevel")
      d.kind = Decoder::kByteLevel;
    else if (type == "Metaspace") {
      d.kind = Decoder::kMetaspace;
      d.literal = replacement_char(s, file);
      d.scheme = prepend_scheme(s, file);
    } else if (type == "ByteFallback")
      d.kind = Decoder::kByteFallback;
    else if (type == "Fuse")
      d.kind = Decoder::kFuse;
    else if (type == "Strip") {
      d.kind = Decoder::kStrip;
      d.literal = string_field(s, "content", file, " ");
      d.start = s.value("start", size_t{0});
      d.stop = s.value("stop", size_t{0});
    } else if (type == "Replace") {
      d.kind = Decoder::kReplace;
      read_pattern(s, file, &d.literal, &d.regex);
      d.content = string_field(s, "content", file);
    } else if (type == "BPEDecoder") {
      d.kind = Decoder::kBpe;
      d.literal = string_field(s, "suffix", file, "</w>");
    } else if (type == "WordPiece") {
      d.kind = Decoder::kWordPiece;
      d.literal = string_field(s, "prefix", file, "##");
      d.cleanup = s.value("cleanup", true);
    } else {
      fail_file(file, "decoder '" + type +
                          "' is not supported (c3 has ByteLevel, Metaspace, ByteFallback, Fuse, "
                          "Strip, Replace, BPEDecoder, WordPiece, Sequence)");
    }
    p.decoders_.push_back(std::move(d));
  }
  // Byte-level vocabularies decode through ByteLevel first (c3 keeps their tokens as bytes).
  const bool decodes_bytes = !p.decoders_.empty() && p.decoders_.front().kind == Decoder::kByteLevel;
  if (p.byte_level_ && !decodes_bytes)
    fail_file(file, "a ByteLevel pre-tokenizer needs a decoder that starts with ByteLevel");
  for (size_t i = 0; i < p.decoders_.size(); ++i)
    if (p.decoders_[i].kind == Decoder::kByteLevel && (!p.byte_level_ || i != 0))
      fail_file(file, "a ByteLevel decoder is supported only first, with a ByteLevel pre-tokenizer");

  steps.clear();
  flatten(doc.value("post_processor", json()), "processors", file, &steps);
  for (const json& s : steps) {
    const std::string type = s["type"];
    if (type == "ByteLevel") continue;  // offsets only
    if (type == "TemplateProcessing") {
      const json single = s.value("single", json::array());
      const json specials = s.value("special_tokens", json::object());
      bool after = false;
      for (const json& piece : single) {
        if (piece.contains("Sequence")) {
          if (piece["Sequence"].value("id", std::string("A")) != "A")
            fail_file(file, "TemplateProcessing single names a sequence other than A");
          after = true;
        } else if (piece.contains("SpecialToken")) {
          const std::string name = piece["SpecialToken"].value("id", std::string());
          if (!specials.contains(name) || !specials[name].contains("ids") || !specials[name]["ids"].is_array())
            fail_file(file, "TemplateProcessing names special token '" + name + "' without ids");
          for (const json& id : specials[name]["ids"])
            (after ? p.suffix_ids_ : p.prefix_ids_).push_back(special_id(id, file));
        } else {
          fail_file(file, "TemplateProcessing piece " + piece.dump() + " is neither SpecialToken nor Sequence");
        }
      }
    } else if (type == "RobertaProcessing" || type == "BertProcessing") {
      for (const char* key : {"cls", "sep"})
        if (!s.contains(key) || !s[key].is_array() || s[key].size() != 2)
          fail_file(file, type + "." + key + " is not [token, id]");
      p.prefix_ids_.push_back(special_id(s["cls"][1], file));
      p.suffix_ids_.push_back(special_id(s["sep"][1], file));
    } else {
      fail_file(file, "post_processor '" + type +
                          "' is not supported (c3 has TemplateProcessing, RobertaProcessing, "
                          "BertProcessing, ByteLevel, Sequence)");
    }
  }
  return p;
}

bool TextPipeline::normalizes() const { return !normalizers_.empty(); }

std::string TextPipeline::normalize(std::string_view text) const {
  std::string s(text);
  for (const Normalizer& n : normalizers_) s = n.apply(std::move(s));
  return s;
}

void TextPipeline::pre_tokenize(std::string_view text, bool at_start,
                                const std::function<void(std::string_view)>& emit) const {
  pre_tokenize_from(0, text, at_start, emit);
}

void TextPipeline::pre_tokenize_from(size_t step, std::string_view text, bool at_start,
                                     const std::function<void(std::string_view)>& emit) const {
  if (text.empty()) return;
  if (step == pre_tokenizers_.size()) return emit(text);
  const PreTokenizer& t = pre_tokenizers_[step];
  std::string changed;  // the piece after ByteLevel's or Metaspace's edits
  if (t.kind == PreTokenizer::kByteLevel) {
    if (t.add_prefix_space && text[0] != ' ') text = changed = " " + std::string(text);
    if (!t.regex) return pre_tokenize_from(step + 1, text, at_start, emit);
  } else if (t.kind == PreTokenizer::kMetaspace) {
    changed = replace_all(text, literal_ranges(" ", text), t.literal);
    const bool starts = changed.compare(0, t.literal.size(), t.literal) == 0;
    if (!starts && (t.scheme == PrependScheme::kAlways || (t.scheme == PrependScheme::kFirst && at_start)))
      changed.insert(0, t.literal);
    text = changed;
    if (!t.split) return pre_tokenize_from(step + 1, text, at_start, emit);
  }
  if (t.kind == PreTokenizer::kByteLevel) {
    for (const Range& r : apply_behavior(regex_ranges(*t.regex, text), Behavior::kIsolated))
      pre_tokenize_from(step + 1, text.substr(r.start, r.end - r.start), at_start && r.start == 0, emit);
    return;
  }
  if (t.kind == PreTokenizer::kSplit && t.regex && t.behavior == Behavior::kIsolated && !t.invert) {
    // The common case (Qwen2, Llama 3): pieces go on as the regex finds them, with no range lists.
    size_t covered = 0;
    t.regex->find_all(text, [&](size_t start, size_t end) {
      if (start > covered)
        pre_tokenize_from(step + 1, text.substr(covered, start - covered), at_start && covered == 0, emit);
      if (end > start) pre_tokenize_from(step + 1, text.substr(start, end - start), at_start && start == 0, emit);
      covered = end;
    });
    if (covered < text.size()) pre_tokenize_from(step + 1, text.substr(covered), at_start && covered == 0, emit);
    return;
  }
  for (const Range& r : t.ranges(text))
    pre_tokenize_from(step + 1, text.substr(r.start, r.end - r.start), at_start && r.start == 0, emit);
}

std::string TextPipeline::decode(std::vector<std::string> tokens) const {
  if (!has_decoder_) {
    std::string out;
    for (size_t i = 0; i < tokens.size(); ++i) out += (i ? " " : "") + tokens[i];
    return unicode::replace_invalid_utf8(out);
  }
  for (const Decoder& d : decoders_) d.apply(tokens);
  std::string out;
  for (const auto& t : tokens) out += t;
  return unicode::replace_invalid_utf8(out);
}

}  // namespace c3
