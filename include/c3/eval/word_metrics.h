// The Fox scorer's word-set metrics (spec section 6), which the paper reports as "precision".
#pragma once

#include <string>
#include <vector>

namespace c3 {

// Python's str.split(): runs of whitespace separate words.
std::vector<std::string> split_words(const std::string& text);

// |set(GT words) & set(output words)| / |set(GT words)|: the official script's "precision"
// (its arguments are swapped, so this is what it prints under that name). 0 for an empty GT.
double word_precision(const std::string& ground_truth, const std::string& output);

}  // namespace c3
