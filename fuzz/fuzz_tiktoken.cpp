// qwen.tiktoken (base64 token and rank per line), then encoding with what it loaded.
#include "c3/tokenizer/bpe.h"
#include "fuzz_support.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const auto path = c3::fuzz::write_input("tok/qwen.tiktoken", c3::fuzz::as_text(data, size));
  c3::fuzz::expect_only_c3_errors([&] {
    const auto tokenizer = c3::BpeTokenizer::from_tiktoken(path);
    (void)tokenizer->decode(tokenizer->encode("Hello world, <|im_end|> 123\n"), false);
  });
  return 0;
}
