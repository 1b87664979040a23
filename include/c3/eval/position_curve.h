// Where in a text the reconstruction goes wrong (the paper's "sequential information loss"):
// align the output with the ground truth character by character (a minimum-edit alignment) and
// count, per tenth of the ground truth, the share of its characters matched to the same character.
#pragma once

#include <string_view>
#include <vector>

namespace c3 {

// One value per bin (bin b holds the ground-truth characters [b n / bins, (b+1) n / bins));
// NaN for a bin with no characters (a truth shorter than `bins`). Among alignments of minimum
// cost, the one with matches as early as possible is taken: an output that stops half way is
// credited with the first half, not with look-alike characters near the end.
std::vector<double> position_curve(std::u32string_view truth, std::u32string_view output, int bins = 10);

}  // namespace c3
