// What c3 eval reads: Fox's page-OCR JSON, JSONL pages, and prediction files to score.
#include "c3/eval/eval_data.h"
#include "fuzz_support.h"

// The first byte picks the format: 0 Fox JSON, 1 JSONL pages, 2 scored pairs.
extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const auto body = c3::fuzz::as_text(data + 1, size - 1);
  switch (data[0] % 3) {
    case 0: {
      const auto path = c3::fuzz::write_input("en_page_ocr.json", body);
      c3::fuzz::expect_only_c3_errors([&] { (void)c3::read_eval_data(path); });
      break;
    }
    case 1: {
      const auto path = c3::fuzz::write_input("pages.jsonl", body);
      c3::fuzz::expect_only_c3_errors([&] { (void)c3::read_eval_data(path); });
      break;
    }
    default: {
      const auto path = c3::fuzz::write_input("predictions.jsonl", body);
      c3::fuzz::expect_only_c3_errors([&] { (void)c3::read_scored_pairs(path.string()); });
    }
  }
  return 0;
}
