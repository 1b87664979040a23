// c3 info PATH: what a checkpoint folder holds, without loading the weights.
#include <iostream>

#include <spdlog/spdlog.h>

#include "c3/model/checkpoint_info.h"
#include "c3/train/checkpoints.h"
#include "command.h"

namespace c3::cli {
namespace {

bool fs_exists(const std::filesystem::path& p) {
  std::error_code ec;
  return std::filesystem::exists(p, ec);
}

}  // namespace

class InfoCommand : public Command {
 public:
  std::string name() const override { return "info"; }
  std::string summary() const override {
    return "Describe a checkpoint folder: architecture, parameters, dtypes, tokenizer files, memory";
  }
  void setup(CLI::App& app, Options&) override {
    app.add_option("path", path_, "Checkpoint folder (Hugging Face layout, a C3 release, or a training run)")->required();
    app.add_flag("--json", json_, "Print one JSON object instead of text");
  }
  int run(const Config&, const Runtime&) override {
    std::filesystem::path path = path_;
    const auto saved = list_checkpoints(path);  // a training run stands for its newest checkpoint
    if (!fs_exists(path / "config.json") && !saved.empty()) {
      spdlog::info("{} is a training run: describing its newest checkpoint, {}", path_, saved.back().string());
      path = saved.back();
    }
    const auto info = describe_checkpoint(path);
    std::cout << (json_ ? info.dump(2) + "\n" : format_checkpoint_info(info));
    return 0;
  }

 private:
  std::string path_;
  bool json_ = false;
};

C3_REGISTER_COMMAND(InfoCommand);

}  // namespace c3::cli
