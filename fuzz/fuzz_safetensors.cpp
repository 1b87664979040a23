// The safetensors header and tensor table (weights, optimizer states, latent files).
#include "c3/io/safetensors.h"
#include "fuzz_support.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  c3::fuzz::expect_only_c3_errors([&] {
    const auto parsed = c3::io::parse_safetensors(data, size, "fuzz.safetensors");
    std::size_t total = 0;
    for (const auto& t : parsed.tensors) {
      c3::fuzz::require(t.end <= size && t.begin <= t.end, "a tensor's bytes lie outside the file");
      c3::fuzz::require(t.nbytes() == static_cast<std::size_t>(t.numel()) * c3::io::dtype_size(t.dtype),
                        "a tensor's byte size is not its elements times its dtype size");
      total += t.nbytes();
    }
    c3::fuzz::require(total <= size, "the tensors hold more bytes than the file");
  });
  return 0;
}
