#include "c3/eval/word_metrics.h"

#include <set>

#include "c3/tokenizer/unicode.h"

namespace c3 {

std::vector<std::string> split_words(const std::string& text) {
  std::vector<std::string> words;
  std::string word;
  for (char c : text) {
    if (unicode::is_ascii_space(c)) {
      if (!word.empty()) words.push_back(std::move(word)), word.clear();
    } else {
      word += c;
    }
  }
  if (!word.empty()) words.push_back(std::move(word));
  return words;
}

double word_precision(const std::string& ground_truth, const std::string& output) {
  const auto gt_words = split_words(ground_truth), out_words = split_words(output);
  const std::set<std::string> gt(gt_words.begin(), gt_words.end()), out(out_words.begin(), out_words.end());
  if (gt.empty()) return 0.0;
  size_t common = 0;
  for (const auto& w : gt) common += out.count(w);
  return static_cast<double>(common) / static_cast<double>(gt.size());
}

}  // namespace c3
