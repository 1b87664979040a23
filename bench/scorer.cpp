// Speed of the Fox scorer (what `c3 eval --score` and `c3 eval` run per page) on 1,000 synthetic
// page pairs of Fox size (650-1,000 words, ~4-6 K characters): a copy, a copy with 3% of its words
// changed, a copy cut at 80%, and a copy that loops. Each component is timed on its own, then the
// whole scorer on one thread and on all; the bit-parallel edit distance is compared with the
// plain dynamic-programming table on a subset (same pairs, same results checked).
//   bench_scorer [--quick] [--json FILE]
#include <chrono>
#include <cstdio>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "bench_args.h"
#include "c3/eval/fox_metrics.h"
#include "c3/eval/position_curve.h"
#include "c3/tokenizer/unicode.h"
#include "c3/util/parallel.h"

using Clock = std::chrono::steady_clock;

namespace {

struct Pair {
  std::string truth, output;
};

std::vector<Pair> make_pairs(int count) {
  std::mt19937_64 rng(42);
  std::vector<std::string> vocabulary;
  for (int i = 0; i < 3000; ++i) {
    std::string w;
    const int length = 2 + static_cast<int>(rng() % 9);
    for (int k = 0; k < length; ++k) w += static_cast<char>('a' + rng() % 26);
    vocabulary.push_back(w);
  }
  auto word = [&] {  // roughly Zipfian: frequent short words, a long tail
    const double u = std::uniform_real_distribution<double>(0, 1)(rng);
    return vocabulary[static_cast<size_t>(std::pow(u, 3.0) * vocabulary.size())];
  };
  std::vector<Pair> pairs;
  for (int p = 0; p < count; ++p) {
    std::vector<std::string> words;
    const int n = 650 + static_cast<int>(rng() % 350);
    for (int i = 0; i < n; ++i) words.push_back(word());
    auto join = [](const std::vector<std::string>& ws) {
      std::string s;
      for (size_t i = 0; i < ws.size(); ++i) s += (i ? (i % 12 == 0 ? "\n" : " ") : "") + ws[i];
      return s;
    };
    Pair pair{join(words), ""};
    std::vector<std::string> out = words;
    switch (p % 4) {
      case 1:
        for (auto& w : out)
          if (rng() % 100 < 3) w = word();
        break;
      case 2:
        out.resize(out.size() * 8 / 10);
        break;
      case 3:
        out.resize(out.size() * 6 / 10);
        for (int k = 0; k < 10; ++k) out.insert(out.end(), words.begin() + 100, words.begin() + 140);
        break;
      default:
        break;
    }
    pair.output = join(out);
    pairs.push_back(std::move(pair));
  }
  return pairs;
}

template <typename F>
double seconds(F&& f) {
  const auto t0 = Clock::now();
  f();
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

}  // namespace

int main(int argc, char** argv) {
  const BenchArgs args = start_bench(argc, argv);
  const int count = args.quick ? 200 : 1000;
  const auto pairs = make_pairs(count);
  std::vector<std::u32string> truth_cp, output_cp;
  double chars = 0;
  for (const auto& p : pairs) {
    truth_cp.push_back(c3::unicode::code_points(p.truth));
    output_cp.push_back(c3::unicode::code_points(p.output));
    chars += static_cast<double>(truth_cp.back().size());
  }
  std::printf("%d page pairs, %.0f characters per ground truth on average, %d cores\n\n", count, chars / count,
              args.cores);
  volatile double sink = 0;
  struct Row {
    std::string name;
    double seconds;
    int pairs;
  };
  std::vector<Row> rows;

  rows.push_back({"split words (both sides)", seconds([&] {
                    for (const auto& p : pairs)
                      sink = sink + c3::split_words(p.truth).size() + c3::split_words(p.output).size();
                  }),
                  count});
  rows.push_back({"BLEU (NLTK, swapped)", seconds([&] {
                    for (const auto& p : pairs)
                      sink = sink + c3::nltk_bleu(c3::split_words(p.output), c3::split_words(p.truth));
                  }),
                  count});
  rows.push_back({"edit distance, bit-parallel", seconds([&] {
                    for (int i = 0; i < count; ++i) sink = sink + c3::levenshtein(truth_cp[i], output_cp[i]);
                  }),
                  count});
  const int table_pairs = args.quick ? 8 : 40;
  int64_t mismatches = 0;
  rows.push_back({"edit distance, DP table (reference)", seconds([&] {
                    for (int i = 0; i < table_pairs; ++i)
                      mismatches += c3::levenshtein_table(truth_cp[i], output_cp[i]) !=
                                    c3::levenshtein(truth_cp[i], output_cp[i]);
                  }),
                  table_pairs});
  rows.push_back({"position curve (alignment)", seconds([&] {
                    for (int i = 0; i < count; ++i) sink = sink + c3::position_curve(truth_cp[i], output_cp[i])[0];
                  }),
                  count});
  rows.push_back({"score_page, 1 thread", seconds([&] {
                    for (const auto& p : pairs) sink = sink + c3::score_page(p.truth, p.output).precision;
                  }),
                  count});
  rows.push_back({"score_page, " + std::to_string(args.cores) + " threads", seconds([&] {
                    std::vector<double> precision(count);
                    c3::parallel_for_each(count, args.cores, [&](int64_t i) {
                      precision[i] = c3::score_page(pairs[i].truth, pairs[i].output).precision;
                    });
                    sink = sink + precision[0];
                  }),
                  count});

  std::printf("| component | pairs | ms per pair | pairs/s |\n|---|---:|---:|---:|\n");
  nlohmann::json out = {{"pairs", count}, {"cores", args.cores}, {"rows", nlohmann::json::array()}};
  for (const auto& r : rows) {
    const double per = r.seconds / r.pairs;
    std::printf("| %s | %d | %.3f | %.0f |\n", r.name.c_str(), r.pairs, 1e3 * per, 1.0 / per);
    out["rows"].push_back({{"component", r.name}, {"pairs", r.pairs}, {"ms_per_pair", 1e3 * per}});
  }
  const double bit = rows[2].seconds / rows[2].pairs, table = rows[3].seconds / rows[3].pairs;
  std::printf("\nbit-parallel edit distance: %.0fx faster than the table, %lld mismatches on %d pairs\n", table / bit,
              static_cast<long long>(mismatches), table_pairs);
  out["edit_distance_speedup"] = table / bit;
  out["edit_distance_mismatches"] = mismatches;
  if (!args.json_path.empty()) std::ofstream(args.json_path) << out.dump(2) << "\n";
  return mismatches == 0 ? 0 : 1;
}
