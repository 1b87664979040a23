#include "c3/eval/position_curve.h"

#include <cmath>
#include <cstdint>
#include <limits>

namespace c3 {

namespace {

// Marks in `matched` the truth characters a minimum-edit alignment pairs with the same output character.
void align_middle(std::u32string_view truth, std::u32string_view output, char* matched) {
  const size_t n = truth.size(), m = output.size();
  if (n > 0 && m > 0) {
    // Full table of moves, two bits per cell: 0 diagonal, 1 up (a truth character dropped),
    // 2 left (an output character inserted).
    const size_t width = m + 1;
    std::vector<uint8_t> moves(((n + 1) * width + 3) / 4, 0);
    auto set_move = [&](size_t i, size_t j, unsigned move) {
      const size_t k = i * width + j;
      moves[k / 4] |= static_cast<uint8_t>(move << (2 * (k % 4)));
    };
    auto move_at = [&](size_t i, size_t j) {
      const size_t k = i * width + j;
      return (moves[k / 4] >> (2 * (k % 4))) & 3u;
    };
    std::vector<int32_t> previous(width), current(width);
    for (size_t j = 0; j <= m; ++j) previous[j] = static_cast<int32_t>(j), set_move(0, j, 2);
    for (size_t i = 1; i <= n; ++i) {
      current[0] = static_cast<int32_t>(i);
      set_move(i, 0, 1);
      for (size_t j = 1; j <= m; ++j) {
        const int32_t diagonal = previous[j - 1] + (truth[i - 1] == output[j - 1] ? 0 : 1);
        const int32_t up = previous[j] + 1, left = current[j - 1] + 1;
        // On ties a gap wins: read back from the end, gaps go late and matches early, so an
        // output that stopped short is not credited with look-alike characters near the end.
        if (up <= left && up <= diagonal) {
          current[j] = up;
          set_move(i, j, 1);
        } else if (left <= diagonal) {
          current[j] = left;
          set_move(i, j, 2);
        } else {
          current[j] = diagonal;
        }
      }
      std::swap(previous, current);
    }
    size_t i = n, j = m;
    while (i > 0 || j > 0) {
      const unsigned move = move_at(i, j);
      if (move == 0) {
        if (truth[i - 1] == output[j - 1]) matched[i - 1] = 1;
        --i, --j;
      } else if (move == 1) {
        --i;
      } else {
        --j;
      }
    }
  }
}

}  // namespace

std::vector<double> position_curve(std::u32string_view truth, std::u32string_view output, int bins) {
  std::vector<char> matched(truth.size(), 0);
  // A common prefix and suffix belong to a minimum alignment: match them, align only the middle.
  size_t prefix = 0;
  while (prefix < truth.size() && prefix < output.size() && truth[prefix] == output[prefix]) matched[prefix++] = 1;
  size_t suffix = 0;
  while (suffix < truth.size() - prefix && suffix < output.size() - prefix &&
         truth[truth.size() - 1 - suffix] == output[output.size() - 1 - suffix])
    matched[truth.size() - 1 - suffix++] = 1;
  align_middle(truth.substr(prefix, truth.size() - prefix - suffix),
               output.substr(prefix, output.size() - prefix - suffix), matched.data() + prefix);
  const size_t n = truth.size();
  std::vector<double> hits(bins, 0.0), sizes(bins, 0.0);
  for (size_t i = 0; i < n; ++i) {
    const auto b = static_cast<size_t>(static_cast<double>(i) * bins / static_cast<double>(n));
    sizes[b] += 1.0;
    hits[b] += matched[i];
  }
  std::vector<double> curve(bins);
  for (int b = 0; b < bins; ++b)
    curve[b] = sizes[b] > 0 ? hits[b] / sizes[b] : std::numeric_limits<double>::quiet_NaN();
  return curve;
}

}  // namespace c3
