// Tokenizer encoding speed on English prose, Qwen2 byte-level BPE and sentencepiece BPE side by side.
//   bench_tokenizer_encode QWEN_TOKENIZER_PATH PROSE_FILE... [--megabytes N]
// The prose is cut into ~4 KB documents (as batch compression encodes them) and repeated up to
// N MB (default 8). "cold" encodes the prose once with a freshly loaded tokenizer (empty
// pre-token cache); "warm" is the steady state over the whole N MB. sentencepiece is trained by
// c3 on the same prose (BPE), so both read text they can tokenize well.
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "c3/tokenizer/sentencepiece.h"
#include "c3/tokenizer/tokenizer.h"
#include "c3/util/atomic_file.h"

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

namespace {

std::vector<std::string> documents(const std::string& text, size_t size) {
  std::vector<std::string> docs;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t end = std::min(text.size(), pos + size);
    const size_t space = text.find(' ', end);
    end = space == std::string::npos ? text.size() : space;
    docs.push_back(text.substr(pos, end - pos));
    pos = end;
  }
  return docs;
}

struct Result {
  double seconds = 0;
  size_t bytes = 0, tokens = 0;
};

Result encode_all(const c3::Tokenizer& t, const std::vector<std::string>& docs, int repeats) {
  Result r;
  const auto t0 = Clock::now();
  for (int i = 0; i < repeats; ++i)
    for (const auto& d : docs) {
      r.tokens += t.encode(d).size();
      r.bytes += d.size();
    }
  r.seconds = std::chrono::duration<double>(Clock::now() - t0).count();
  return r;
}

double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> files;
  std::string qwen;
  double megabytes = 8;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--megabytes" && i + 1 < argc)
      megabytes = std::stod(argv[++i]);
    else if (qwen.empty())
      qwen = a;
    else
      files.push_back(a);
  }
  if (qwen.empty() || files.empty()) {
    std::fprintf(stderr, "usage: %s QWEN_TOKENIZER_PATH PROSE_FILE... [--megabytes N]\n", argv[0]);
    return 2;
  }
  std::string prose;
  for (const auto& f : files) prose += c3::read_text_file(f) + "\n";
  const auto docs = documents(prose, 4096);
  const int repeats = std::max(1, static_cast<int>(megabytes * 1e6 / static_cast<double>(prose.size())));

  const fs::path tmp = fs::temp_directory_path() / ("c3-bench-tok-" + std::to_string(::getpid()));
  fs::create_directories(tmp);
  c3::write_file_atomically(tmp / "prose.txt", prose);
  c3::SentencePieceTrainOptions o;
  o.inputs = {tmp / "prose.txt"};
  o.vocab_size = 1000;
  c3::train_sentencepiece(o, tmp / "spm");

  std::printf("English prose: %.1f KB in %zu documents, repeated %d times (%.1f MB)\n", prose.size() / 1e3, docs.size(),
              repeats, prose.size() * repeats / 1e6);
  std::printf("%-34s %9s %10s %12s %12s %9s\n", "tokenizer", "load s", "cold MB/s", "warm MB/s", "warm tok/s",
              "bytes/tok");
  struct Row {
    std::string name;
    double load, cold, warm, tps, bpt;
  };
  std::vector<Row> rows;
  for (const auto& [name, path] : {std::pair<std::string, fs::path>{"Qwen2 byte-level BPE (151k)", qwen},
                                   {"sentencepiece BPE (1k, trained here)", tmp / "spm"}}) {
    auto t0 = Clock::now();
    auto tok = c3::load_tokenizer(path);
    const double load = seconds_since(t0);
    const Result cold = encode_all(*tok, docs, 1);
    const Result warm = encode_all(*tok, docs, repeats);
    rows.push_back({name, load, cold.bytes / cold.seconds / 1e6, warm.bytes / warm.seconds / 1e6,
                    warm.tokens / warm.seconds, static_cast<double>(warm.bytes) / warm.tokens});
    const Row& r = rows.back();
    std::printf("%-34s %9.2f %10.2f %12.2f %12.0f %9.2f\n", r.name.c_str(), r.load, r.cold, r.warm, r.tps, r.bpt);
  }
  std::printf("Qwen2 BPE / sentencepiece, warm MB/s: %.2fx\n", rows[0].warm / rows[1].warm);
  fs::remove_all(tmp);
  return 0;
}
