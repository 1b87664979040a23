// Hugging Face tokenizer.json (byte-level BPE), then encoding with what it loaded.
#include "c3/tokenizer/bpe.h"
#include "fuzz_support.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const auto path = c3::fuzz::write_input("tok/tokenizer.json", c3::fuzz::as_text(data, size));
  c3::fuzz::expect_only_c3_errors([&] {
    const auto tokenizer = c3::BpeTokenizer::from_tokenizer_json(path);
    const auto ids = tokenizer->encode("Hello world, <|im_end|> 123 \xe4\xbd\xa0\xe5\xa5\xbd\n");
    (void)tokenizer->decode(ids, false);
  });
  return 0;
}
