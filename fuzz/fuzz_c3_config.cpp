// c3's config files and --set values, over keys of every kind the subcommands declare.
#include "c3/util/config.h"
#include "fuzz_support.h"

namespace {

c3::Config declared() {
  c3::Config c;
  c.declare("train.steps", 1000, "int");
  c.declare("optim.lr", 1e-4, "float");
  c.declare("train.resume", true, "bool");
  c.declare("train.dtype", "auto", "choice", {"auto", "float32", "bfloat16"});
  c.declare("model.encoder", "", "path");
  c.mark_path("model.encoder");
  c.declare("data.train", nlohmann::json::array(), "paths");
  c.mark_path("data.train");
  c.declare("eval.perturb", nlohmann::json::array(), "list");
  return c;
}

}  // namespace

// FILE \0 one --set assignment per line.
extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const auto [file, assignments] = c3::fuzz::split_at_nul(c3::fuzz::as_text(data, size));
  const auto path = c3::fuzz::write_input("configs/run.json", file);
  c3::fuzz::expect_only_c3_errors([&] {
    c3::Config c = declared();
    c.merge_file(path.string());
    (void)c.get<int64_t>("train.steps"), (void)c.get<double>("optim.lr"), (void)c.get<bool>("train.resume");
    (void)c.get<std::vector<std::string>>("data.train");
  });
  std::string_view rest = assignments;
  while (!rest.empty()) {
    const size_t end = rest.find('\n');
    const std::string line(rest.substr(0, end));
    rest = end == std::string_view::npos ? std::string_view() : rest.substr(end + 1);
    c3::fuzz::expect_only_c3_errors([&] {
      c3::Config c = declared();
      c.set_assignment(line);
      (void)c.get<int64_t>("train.steps"), (void)c.get<std::string>("train.dtype");
    });
  }
  return 0;
}
