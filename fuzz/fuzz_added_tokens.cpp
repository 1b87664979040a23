// tokenizer_config.json (added_tokens_decoder) and added_tokens.json beside a valid vocab.json +
// merges.txt: the special tokens a Qwen2 folder adds.
#include <nlohmann/json.hpp>
#include <string>

#include "c3/tokenizer/tokenizer.h"
#include "c3/tokenizer/unicode.h"
#include "fuzz_support.h"

namespace {

// A byte-level vocabulary of the 256 byte symbols and no merges.
const std::filesystem::path& vocabulary_folder() {
  static const std::filesystem::path folder = [] {
    nlohmann::json vocab = nlohmann::json::object();
    for (int b = 0; b < 256; ++b) vocab[c3::unicode::byte_to_unicode()[b]] = b;
    c3::fuzz::write_input("base/vocab.json", vocab.dump());
    c3::fuzz::write_input("base/merges.txt", "#version: 0.2\n");
    return c3::fuzz::scratch() / "base";
  }();
  return folder;
}

}  // namespace

// tokenizer_config.json \0 added_tokens.json (an empty part: no such file)
extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const auto [config, added] = c3::fuzz::split_at_nul(c3::fuzz::as_text(data, size));
  const auto dir = c3::fuzz::scratch() / "added";
  std::error_code ec;
  std::filesystem::remove_all(dir, ec);
  std::filesystem::create_directories(dir);
  for (const char* name : {"vocab.json", "merges.txt"})
    std::filesystem::copy_file(vocabulary_folder() / name, dir / name,
                               std::filesystem::copy_options::overwrite_existing);
  if (!config.empty()) c3::fuzz::write_input("added/tokenizer_config.json", config);
  if (!added.empty()) c3::fuzz::write_input("added/added_tokens.json", added);
  c3::fuzz::expect_only_c3_errors([&] {
    const auto tokenizer = c3::load_tokenizer(dir);
    (void)tokenizer->decode(tokenizer->encode("a<|im_end|>b<img>c"));
  });
  return 0;
}
