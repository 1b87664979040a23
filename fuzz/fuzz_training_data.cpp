// Training data: JSONL documents and the authors' conversations JSON.
#include "c3/data/dataset.h"
#include "fuzz_support.h"

// The first byte picks the format: even JSONL, odd JSON (conversations or a list of objects).
extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const auto body = c3::fuzz::as_text(data + 1, size - 1);
  const auto path = c3::fuzz::write_input(data[0] % 2 ? "train.json" : "train.jsonl", body);
  c3::fuzz::expect_only_c3_errors([&] {
    for (const auto& document : c3::read_documents(path))
      c3::fuzz::require(!document.origin.empty(), "a document without origin");
  });
  return 0;
}
