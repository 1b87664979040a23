// Hugging Face config.json of a Qwen2 side, and a C3 checkpoint's config.json.
#include "c3/io/checkpoint_dir.h"
#include "c3/model/c3_io.h"
#include "c3/model/qwen2_config.h"
#include "fuzz_support.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const auto path = c3::fuzz::write_input("model/config.json", c3::fuzz::as_text(data, size));
  c3::fuzz::expect_only_c3_errors([&] {
    const auto config = c3::Qwen2Config::from_json(c3::io::read_json_file(path), path.string());
    (void)config.parameter_count();
  });
  c3::fuzz::expect_only_c3_errors([&] { (void)c3::read_c3_config(path.parent_path()); });
  return 0;
}
