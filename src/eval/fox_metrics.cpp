#include "c3/eval/fox_metrics.h"

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <unordered_map>
#include <unordered_set>

#include "c3/tokenizer/unicode.h"

namespace c3 {
namespace {

bool is_chinese(char32_t c) { return c >= 0x4E00 && c <= 0x9FA5; }

std::vector<std::string> split(std::u32string_view chars, bool chinese_characters) {
  std::vector<std::string> words;
  std::u32string word;
  auto flush = [&] {
    if (!word.empty()) words.push_back(unicode::to_utf8(word)), word.clear();
  };
  for (char32_t c : chars) {
    if (unicode::is_python_space(c)) {
      flush();
    } else if (chinese_characters && is_chinese(c)) {
      flush();
      words.push_back(unicode::to_utf8(std::u32string(1, c)));
    } else {
      word += c;
    }
  }
  flush();
  return words;
}

bool any_chinese(std::u32string_view chars) { return std::any_of(chars.begin(), chars.end(), is_chinese); }

// An n-gram (n <= 4) of word ids, exactly.
struct Ngram {
  uint64_t a = 0, b = 0;
  bool operator==(const Ngram& o) const { return a == o.a && b == o.b; }
};
struct NgramHash {
  size_t operator()(const Ngram& g) const { return std::hash<uint64_t>()(g.a * 0x9E3779B97F4A7C15ull ^ g.b); }
};
using NgramCounts = std::unordered_map<Ngram, int64_t, NgramHash>;

NgramCounts count_ngrams(const std::vector<uint32_t>& ids, size_t n) {
  NgramCounts counts;
  for (size_t i = 0; i + n <= ids.size(); ++i) {
    Ngram g;
    for (size_t k = 0; k < n; ++k) (k < 2 ? g.a : g.b) |= static_cast<uint64_t>(ids[i + k]) << (32 * (k % 2));
    ++counts[g];
  }
  return counts;
}

// |a & b| over the distinct words of each.
int64_t common_words(const std::vector<std::string>& a, const std::vector<std::string>& b, int64_t* distinct_a,
                     int64_t* distinct_b) {
  const std::unordered_set<std::string> sa(a.begin(), a.end()), sb(b.begin(), b.end());
  *distinct_a = static_cast<int64_t>(sa.size()), *distinct_b = static_cast<int64_t>(sb.size());
  int64_t common = 0;
  for (const auto& w : sa) common += static_cast<int64_t>(sb.count(w));
  return common;
}

// x / y, or the convention for an empty side (1 when both are empty, else 0).
double ratio(int64_t x, int64_t y, bool both_empty) {
  if (y == 0) return both_empty ? 1.0 : 0.0;
  return static_cast<double>(x) / static_cast<double>(y);
}

}  // namespace

std::vector<std::string> split_words(std::string_view text) { return split(unicode::code_points(text), false); }

std::vector<std::string> split_words_and_chinese_characters(std::string_view text) {
  return split(unicode::code_points(text), true);
}

bool has_chinese(std::string_view text) { return any_chinese(unicode::code_points(text)); }

double exact_sum(const std::vector<double>& values) {
  // CPython's math_fsum: Shewchuk's non-overlapping partials, then round-half-even of the total.
  std::vector<double> partials;
  for (double x : values) {
    size_t i = 0;
    for (double y : partials) {
      if (std::fabs(x) < std::fabs(y)) std::swap(x, y);
      const double hi = x + y;
      const double lo = y - (hi - x);
      if (lo != 0.0) partials[i++] = lo;
      x = hi;
    }
    partials.resize(i);
    partials.push_back(x);
  }
  if (partials.empty()) return 0.0;
  size_t n = partials.size();
  double hi = partials[--n], lo = 0.0;
  while (n > 0) {
    const double x = hi, y = partials[--n];
    hi = x + y;
    lo = y - (hi - x);
    if (lo != 0.0) break;
  }
  if (n > 0 && ((lo < 0.0 && partials[n - 1] < 0.0) || (lo > 0.0 && partials[n - 1] > 0.0))) {
    const double y = lo * 2.0, x = hi + y;
    if (y == x - hi) hi = x;
  }
  return hi;
}

double nltk_bleu(const std::vector<std::string>& reference, const std::vector<std::string>& hypothesis) {
  std::unordered_map<std::string, uint32_t> ids;
  auto to_ids = [&](const std::vector<std::string>& words) {
    std::vector<uint32_t> out;
    for (const auto& w : words) out.push_back(ids.emplace(w, static_cast<uint32_t>(ids.size() + 1)).first->second);
    return out;
  };
  const auto ref = to_ids(reference), hyp = to_ids(hypothesis);
  int64_t numerators[5] = {0}, denominators[5] = {0};
  for (size_t n = 1; n <= 4; ++n) {
    const NgramCounts hyp_counts = count_ngrams(hyp, n), ref_counts = count_ngrams(ref, n);
    int64_t total = 0;
    for (const auto& [gram, count] : hyp_counts) {
      const auto it = ref_counts.find(gram);
      numerators[n] += std::min(count, it == ref_counts.end() ? 0 : it->second);
      total += count;
    }
    denominators[n] = std::max<int64_t>(1, total);
  }
  if (numerators[1] == 0) return 0.0;  // no unigram in common (also: empty hypothesis)
  const auto hyp_len = static_cast<int64_t>(hyp.size()), ref_len = static_cast<int64_t>(ref.size());
  const double bp =
      hyp_len > ref_len ? 1.0 : std::exp(1.0 - static_cast<double>(ref_len) / static_cast<double>(hyp_len));
  std::vector<double> terms;
  for (size_t n = 1; n <= 4; ++n) {
    // SmoothingFunction.method0: a zero precision becomes sys.float_info.min.
    const double p =
        numerators[n] == 0 ? DBL_MIN : static_cast<double>(numerators[n]) / static_cast<double>(denominators[n]);
    terms.push_back(0.25 * std::log(p));
  }
  return bp * std::exp(exact_sum(terms));
}

int64_t levenshtein(std::u32string_view a, std::u32string_view b) {
  if (a.size() > b.size()) std::swap(a, b);  // the pattern (bit vectors) is the shorter one
  const size_t m = a.size();
  if (m == 0) return static_cast<int64_t>(b.size());
  const size_t blocks = (m + 63) / 64;
  // Peq: for each character of the pattern, the bit mask of its positions.
  std::unordered_map<char32_t, size_t> slot;
  std::vector<uint64_t> peq;
  for (size_t i = 0; i < m; ++i) {
    auto [it, fresh] = slot.emplace(a[i], peq.size() / blocks);
    if (fresh) peq.resize(peq.size() + blocks, 0);
    peq[it->second * blocks + i / 64] |= 1ull << (i % 64);
  }
  std::vector<uint64_t> pv(blocks, ~0ull), mv(blocks, 0);
  const uint64_t last_bit = 1ull << ((m - 1) % 64);
  int64_t score = static_cast<int64_t>(m);
  const std::vector<uint64_t> none(blocks, 0);
  for (char32_t c : b) {
    const auto it = slot.find(c);
    const uint64_t* eq_row = it == slot.end() ? none.data() : &peq[it->second * blocks];
    int carry = 1;  // the top row D[0][j] = j: every column adds one
    for (size_t k = 0; k < blocks; ++k) {
      uint64_t eq = eq_row[k];
      const uint64_t xv = eq | mv[k];
      if (carry < 0) eq |= 1;
      const uint64_t xh = (((eq & pv[k]) + pv[k]) ^ pv[k]) | eq;
      uint64_t ph = mv[k] | ~(xh | pv[k]);
      uint64_t mh = pv[k] & xh;
      const uint64_t high = k + 1 == blocks ? last_bit : 1ull << 63;
      const int out = (ph & high) ? 1 : (mh & high) ? -1 : 0;
      ph <<= 1, mh <<= 1;
      if (carry < 0)
        mh |= 1;
      else if (carry > 0)
        ph |= 1;
      pv[k] = mh | ~(xv | ph);
      mv[k] = ph & xv;
      carry = out;
    }
    score += carry;
  }
  return score;
}

int64_t levenshtein_table(std::u32string_view a, std::u32string_view b) {
  std::vector<int64_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = static_cast<int64_t>(j);
  for (size_t i = 1; i <= a.size(); ++i) {
    int64_t diagonal = row[0];
    row[0] = static_cast<int64_t>(i);
    for (size_t j = 1; j <= b.size(); ++j) {
      const int64_t up = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diagonal = up;
    }
  }
  return row[b.size()];
}

nlohmann::json PageScores::to_json() const {
  return {{"precision", precision},
          {"recall", recall},
          {"f1", f1},
          {"bleu", bleu},
          {"edit_distance", edit_distance},
          {"one_minus_edit_distance", 1.0 - edit_distance},
          {"exact_match", exact_match},
          {"reference_words", reference_words},
          {"output_words", output_words},
          {"chinese_segmented_by_character", chinese}};
}

PageScores score_page(std::string_view ground_truth, std::string_view output) {
  PageScores s;
  const std::u32string a = unicode::code_points(ground_truth), b = unicode::code_points(output);  // decoded once
  s.chinese = any_chinese(a) || any_chinese(b);
  const auto gt = split(a, s.chinese), out = split(b, s.chinese);
  s.reference_words = static_cast<int64_t>(gt.size()), s.output_words = static_cast<int64_t>(out.size());
  int64_t distinct_gt = 0, distinct_out = 0;
  const int64_t common = common_words(gt, out, &distinct_gt, &distinct_out);
  const bool both_empty = distinct_gt == 0 && distinct_out == 0;
  s.precision = ratio(common, distinct_gt, both_empty);
  s.recall = ratio(common, distinct_out, both_empty);
  if (both_empty)
    s.f1 = 1.0;
  else if (s.precision > 0 && s.recall > 0)
    s.f1 = 1.0 / (0.5 / s.precision + 0.5 / s.recall);
  s.bleu = nltk_bleu(out, gt);  // swapped, as the official script: the GT is the hypothesis
  s.reference_chars = static_cast<int64_t>(a.size()), s.output_chars = static_cast<int64_t>(b.size());
  const auto longest = static_cast<int64_t>(std::max(a.size(), b.size()));
  s.edit_distance = longest == 0 ? 0.0 : static_cast<double>(levenshtein(a, b)) / static_cast<double>(longest);
  s.exact_match = ground_truth == output;
  return s;
}

void ScoreMeans::add(const PageScores& page) {
  precision_.push_back(page.precision), recall_.push_back(page.recall), f1_.push_back(page.f1);
  bleu_.push_back(page.bleu), edit_distance_.push_back(page.edit_distance);
  exact_match_.push_back(page.exact_match ? 1.0 : 0.0);
  ++pages_;
  chinese_ += page.chinese ? 1 : 0;
}

double ScoreMeans::mean(const std::vector<double>& v) const {
  return v.empty() ? 0.0 : exact_sum(v) / static_cast<double>(v.size());
}

nlohmann::json ScoreMeans::to_json() const {
  return {{"pages", pages_},
          {"precision", mean(precision_)},
          {"recall", mean(recall_)},
          {"f1", mean(f1_)},
          {"bleu", mean(bleu_)},
          {"edit_distance", mean(edit_distance_)},
          {"one_minus_edit_distance", 1.0 - mean(edit_distance_)},
          {"exact_match", mean(exact_match_)},
          {"chinese_pages_segmented_by_character", chinese_}};
}

}  // namespace c3
