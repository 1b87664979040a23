// GGUF files (c3 import): the header, metadata and tensor table, every tensor's dequantization,
// and the model the metadata describes.
#include "c3/io/gguf.h"
#include "c3/model/gguf_import.h"
#include "fuzz_support.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const auto path = c3::fuzz::write_input("model.gguf", c3::fuzz::as_text(data, size));
  c3::fuzz::expect_only_c3_errors([&] {
    const c3::io::GgufReader gguf(path);
    for (const auto& t : gguf.tensors()) {
      if (!c3::io::can_dequantize(t.type)) continue;
      const at::Tensor values = c3::io::dequantize(t, path.string());
      c3::fuzz::require(values.numel() == t.numel(), "dequantized a tensor to the wrong number of values");
    }
    const c3::Qwen2Config config = c3::gguf_model_config(gguf);
    (void)c3::gguf_model_tensors(gguf, config);
  });
  return 0;
}
