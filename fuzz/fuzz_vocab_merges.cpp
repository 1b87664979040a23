// vocab.json + merges.txt (GPT-2 / Qwen2 layout), then encoding with what they loaded.
#include "c3/tokenizer/bpe.h"
#include "fuzz_support.h"

// vocab.json \0 merges.txt
extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const auto [vocab, merges] = c3::fuzz::split_at_nul(c3::fuzz::as_text(data, size));
  const auto vocab_path = c3::fuzz::write_input("tok/vocab.json", vocab);
  const auto merges_path = c3::fuzz::write_input("tok/merges.txt", merges);
  c3::fuzz::expect_only_c3_errors([&] {
    const auto tokenizer = c3::BpeTokenizer::from_vocab_merges(vocab_path, merges_path);
    (void)tokenizer->decode(tokenizer->encode("Hello world, <|im_end|> 123\n"), false);
  });
  return 0;
}
