#include "c3/eval/perturb.h"

#include <random>
#include <utility>

#include "c3/tokenizer/unicode.h"
#include "c3/util/error.h"

namespace c3 {

Perturbation parse_perturbation(const std::string& name) {
  if (name == "none") return Perturbation::kNone;
  if (name == "shuffle-words") return Perturbation::kShuffleWords;
  if (name == "random-chars") return Perturbation::kRandomChars;
  throw UsageError("unknown perturbation '" + name + "' (choose none, shuffle-words or random-chars)");
}

std::string perturbation_name(Perturbation p) {
  switch (p) {
    case Perturbation::kShuffleWords:
      return "shuffle-words";
    case Perturbation::kRandomChars:
      return "random-chars";
    default:
      return "none";
  }
}

std::string perturb(const std::string& text, Perturbation p, uint64_t seed) {
  if (p == Perturbation::kNone) return text;
  // mt19937_64 is specified bit for bit; `% n` (not a std distribution) keeps it portable.
  std::mt19937_64 rng(seed);
  const std::u32string chars = unicode::code_points(text);
  std::vector<std::pair<size_t, size_t>> words;  // [begin, end) in code points
  for (size_t i = 0; i < chars.size();) {
    if (unicode::is_python_space(chars[i])) {
      ++i;
      continue;
    }
    size_t j = i;
    while (j < chars.size() && !unicode::is_python_space(chars[j])) ++j;
    words.emplace_back(i, j);
    i = j;
  }
  std::u32string out;
  out.reserve(chars.size());
  if (p == Perturbation::kRandomChars) {
    static const char32_t kAlphabet[] = U"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    for (char32_t c : chars) out += unicode::is_python_space(c) ? c : kAlphabet[rng() % 62];
    return unicode::to_utf8(out);
  }
  std::vector<size_t> order(words.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  for (size_t i = order.size(); i > 1; --i) std::swap(order[i - 1], order[rng() % i]);  // Fisher-Yates
  size_t at = 0;
  for (size_t w = 0; w < words.size(); ++w) {
    out.append(chars, at, words[w].first - at);  // the whitespace before slot w
    const auto& [b, e] = words[order[w]];
    out.append(chars, b, e - b);
    at = words[w].second;
  }
  out.append(chars, at, std::u32string::npos);
  return unicode::to_utf8(out);
}

}  // namespace c3
