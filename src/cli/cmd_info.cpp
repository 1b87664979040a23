// c3 info PATH: what a checkpoint folder holds, without loading the weights.
#include <iostream>

#include "c3/model/checkpoint_info.h"
#include "c3/train/checkpoints.h"
#include "command.h"

namespace c3::cli {

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
