// Latent files (*.c3): the safetensors image plus c3's metadata (spans, byte ranges, joiners).
#include "c3/infer/latent_file.h"
#include "fuzz_support.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  c3::fuzz::expect_only_c3_errors([&] {
    const auto file = c3::read_latent_bytes(std::string(c3::fuzz::as_text(data, size)), "fuzz.c3");
    const auto spans = static_cast<std::size_t>(file.latents.size(0));
    c3::fuzz::require(
        file.span_tokens.size() == spans && file.span_bytes.size() == spans && file.span_joiners.size() == spans,
        "the span metadata does not match the latents");
  });
  return 0;
}
