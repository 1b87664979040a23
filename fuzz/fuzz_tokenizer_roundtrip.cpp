// The real Qwen2 tokenizer on arbitrary bytes: encoding never fails, and for valid UTF-8
// decode(encode(x)) == NFC(x), Qwen2's normaliser (special-token strings read as ordinary text, as
// documents are).
#include "c3/tokenizer/tokenizer.h"
#include "c3/tokenizer/unicode.h"
#include "fuzz_support.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const auto tokenizer = c3::load_tokenizer(C3_QWEN2_TOKENIZER_DIR);
  const auto text = c3::fuzz::as_text(data, size);
  c3::fuzz::expect_only_c3_errors([&] {
    const auto ids = tokenizer->encode_text(text);
    for (const int32_t id : ids)
      c3::fuzz::require(id >= 0 && id < tokenizer->vocab_size(), "an id outside the vocabulary");
    if (c3::unicode::is_valid_utf8(text))
      c3::fuzz::require(tokenizer->decode(ids) == c3::unicode::nfc(text), "decode(encode(x)) != NFC(x)");
    (void)tokenizer->decode(tokenizer->encode(text));  // special-token strings as tokens, as in prompts
  });
  return 0;
}
