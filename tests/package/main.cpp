// Scores a reconstruction with the installed library and prints what it found: the Fox word
// precision of "a b c d" against "a b x d", the "auto" dtype on the CPU, and two spans joined as
// the codec joins them (its header, with everything it includes, is installed).
#include <cstdio>

#include "c3/eval/fox_metrics.h"
#include "c3/infer/codec.h"
#include "c3/util/dtype.h"
#include "c3/version.h"

int main() {
  const c3::PageScores scores = c3::score_page("a b c d", "a b x d");
  const std::string dtype = c3::scalar_type_name(c3::resolve_dtype("auto", c10::Device(c10::kCPU)));
  const std::string joined = c3::join_spans({"a b", "c"}, {"\n", "\n"});
  std::printf("c3 %s: precision %.2f, auto dtype on the CPU %s, joined %zu bytes\n", C3_VERSION, scores.precision,
              dtype.c_str(), joined.size());
  return scores.precision == 0.75 && dtype == "float32" && joined == "a b\nc\n" ? 0 : 1;
}
