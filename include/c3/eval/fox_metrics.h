// The Fox benchmark's scorer (spec section 6), recomputed to match the official script
// (Fox eval_tools, on NLTK) number for number.
//
// The official script passes its arguments swapped: the model output plays NLTK's "reference" and
// the ground truth (GT) the "test"/"hypothesis". So what it prints, and what the papers quote, is
//   precision = |set(GT words) & set(output words)| / |set(GT words)|  (the share of GT words reproduced;
//               the paper's "precision")
//   recall    = |set(GT words) & set(output words)| / |set(output words)|
//   f1        = NLTK f_measure(alpha 0.5) of those two
//   bleu      = NLTK bleu([output words], GT words): 4-gram, uniform weights, no smoothing, brevity
//               penalty from the GT length
//   edit_distance = Levenshtein over characters (code points, no transpositions) / the longer length
// Words are Python's str.split(). Where NLTK returns None or the script divides by zero (an empty
// side), c3 scores 1 when both sides are empty and 0 otherwise; BLEU keeps NLTK's 0 for an empty GT.
// Not implemented: METEOR (it needs WordNet and NLTK's stemmer to match, which c3 cannot check
// without NLTK) and jieba: pages with Chinese characters are segmented per character instead, and
// flagged.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

namespace c3 {

// Python's str.split() with no arguments.
std::vector<std::string> split_words(std::string_view text);
// The official script's test for Chinese: a code point in U+4E00..U+9FA5.
bool has_chinese(std::string_view text);
// The stand-in for jieba: str.split(), then each U+4E00..U+9FA5 character a word of its own.
std::vector<std::string> split_words_and_chinese_characters(std::string_view text);

// NLTK's sentence_bleu([reference], hypothesis) with its defaults (weights 0.25 x 4, no
// smoothing, so a missing n-gram order contributes log(DBL_MIN)), summed with math.fsum's exact
// rounding.
double nltk_bleu(const std::vector<std::string>& reference, const std::vector<std::string>& hypothesis);
// Python's math.fsum: the correctly rounded sum.
double exact_sum(const std::vector<double>& values);
// Levenshtein distance (unit costs); bit-parallel (Myers/Hyyro), O(|a| |b| / 64).
int64_t levenshtein(std::u32string_view a, std::u32string_view b);
// The same by the plain dynamic-programming table, O(|a| |b|): the reference the fast one is
// tested and benchmarked against.
int64_t levenshtein_table(std::u32string_view a, std::u32string_view b);

struct PageScores {
  double precision = 0, recall = 0, f1 = 0, bleu = 0, edit_distance = 0;
  bool exact_match = false;
  bool chinese = false;  // segmented per character instead of jieba
  int64_t reference_words = 0, output_words = 0, reference_chars = 0, output_chars = 0;
  nlohmann::json to_json() const;
};
PageScores score_page(std::string_view ground_truth, std::string_view output);

// Means over pages, as the official script reports them.
class ScoreMeans {
 public:
  void add(const PageScores& page);
  int64_t pages() const { return pages_; }
  // precision, recall, f1, bleu, edit_distance, one_minus_edit_distance, exact_match, pages,
  // chinese_pages_segmented_by_character.
  nlohmann::json to_json() const;
  double precision() const { return mean(precision_); }
  double one_minus_edit_distance() const { return 1.0 - mean(edit_distance_); }

 private:
  double mean(const std::vector<double>& v) const;
  std::vector<double> precision_, recall_, f1_, bleu_, edit_distance_, exact_match_;
  int64_t pages_ = 0, chinese_ = 0;
};

}  // namespace c3
