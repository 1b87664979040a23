// c3 info PATH: what a checkpoint folder holds, without loading the weights, or what a latent
// file holds.
#include <fmt/format.h>

#include <iostream>

#include "c3/infer/latent_file.h"
#include "c3/model/checkpoint_info.h"
#include "c3/model/run_folder.h"
#include "command.h"

namespace c3::cli {
namespace {

std::string format_latent_info(const nlohmann::json& info) {
  std::string spans;
  for (const auto& t : info["span_tokens"]) spans += (spans.empty() ? "" : ", ") + t.dump();
  return fmt::format(
      "latent file   c3 latents, format {}, written by c3 {}\n"
      "source        {} ({} bytes, sha256 {})\n"
      "spans         {}: {} text tokens ({} in all)\n"
      "latents       {} x {} x {} {} ({:.1f}x compression)\n"
      "model         fingerprint {} (c3 reconstruct needs the model with this fingerprint)\n",
      info["format_version"].get<int>(), info["c3_version"].get<std::string>(), info["source_path"].get<std::string>(),
      info["source_bytes"].get<int64_t>(), info["source_sha256"].get<std::string>().substr(0, 16),
      info["spans"].get<int64_t>() == 1 ? std::string("1 span")
                                        : std::to_string(info["spans"].get<int64_t>()) + " spans",
      spans, info["text_tokens"].get<int64_t>(), info["spans"].get<int64_t>(),
      info["latent_tokens_per_span"].get<int64_t>(), info["hidden_size"].get<int64_t>(),
      info["dtype"].get<std::string>(), info["compression_ratio"].get<double>(),
      info["model_fingerprint"].get<std::string>().substr(0, 16));
}

}  // namespace

class InfoCommand : public Command {
 public:
  std::string name() const override { return "info"; }
  std::string summary() const override {
    return "Describe a checkpoint folder (architecture, parameters, dtypes, trained length, memory) or a latent file";
  }
  void setup(CLI::App& app, Options&) override {
    app.add_option("path", path_,
                   "Checkpoint folder (Hugging Face layout, a C3 release, or a training run), or a latent file (.c3)")
        ->required();
    app.add_flag("--json", json_, "Print one JSON object instead of text");
  }
  int run(const Config&, const Runtime&) override {
    std::error_code ec;
    if (std::filesystem::is_regular_file(path_, ec) && is_c3_latent_file(path_)) {
      const auto info = describe_latent_file(path_);
      std::cout << (json_ ? info.dump(2) + "\n" : format_latent_info(info));
      return 0;
    }
    const auto info = describe_checkpoint(newest_checkpoint_of_run(path_));
    std::cout << (json_ ? info.dump(2) + "\n" : format_checkpoint_info(info));
    return 0;
  }

 private:
  std::string path_;
  bool json_ = false;
};

C3_REGISTER_COMMAND(InfoCommand);

}  // namespace c3::cli
