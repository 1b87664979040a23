// c3 init OUTPUT: a randomly initialised Qwen2 checkpoint in Hugging Face layout (for training
// from scratch, tests and benchmarks).
#include <spdlog/spdlog.h>

#include "c3/io/checkpoint_dir.h"
#include "c3/model/checkpoint_info.h"
#include "c3/model/qwen2_io.h"
#include "c3/util/dtype.h"
#include "c3/util/error.h"
#include "command.h"

namespace c3::cli {

class InitCommand : public Command {
 public:
  std::string name() const override { return "init"; }
  std::string summary() const override { return "Write a randomly initialised Qwen2 checkpoint folder"; }
  void setup(CLI::App& app, Options& options) override {
    app.add_option("output", output_, "Checkpoint folder to create")->required();
    app.add_flag("--force", force_, "Replace OUTPUT if it exists");
    options.add(app, "--preset", "init.preset", "tiny", "Architecture preset", {"tiny", "0.5b", "1.5b", "3b"});
    options.add_path(app, "--model-config", "init.model_config", "",
                "Hugging Face config.json to take the architecture from (overrides --preset)");
    options.add(app, "--dtype", "init.dtype", "float32", "Stored dtype", {"float32", "bfloat16", "float16"});
    options.add(app, "--seed", "init.seed", 0, "Random seed");
    options.add(app, "--max-shard-bytes", "init.max_shard_bytes", int64_t{5} << 30,
                "Split the weights into shards of at most this many bytes");
  }
  int run(const Config& config, const Runtime&) override {
    if (std::filesystem::exists(output_) && !force_)
      fail_file(output_, "already exists (pass --force to replace it)");
    const std::string model_config = config.get<std::string>("init.model_config");
    Qwen2Config arch = model_config.empty()
                           ? Qwen2Config::preset(config.get<std::string>("init.preset"))
                           : Qwen2Config::from_json(io::read_json_file(model_config), model_config);
    const int64_t shard = config.get<int64_t>("init.max_shard_bytes");
    if (shard <= 0) throw UsageError("--max-shard-bytes must be positive");
    spdlog::info("initialising {} parameters (seed {})", human_count(arch.parameter_count()),
                 config.get<int64_t>("init.seed"));
    Qwen2ForCausalLM model(arch);
    model->init_weights(static_cast<uint64_t>(config.get<int64_t>("init.seed")));
    SaveOptions save;
    save.dtype = scalar_type_from_name(config.get<std::string>("init.dtype"));
    save.max_shard_bytes = static_cast<uint64_t>(shard);
    save.overwrite = force_;
    save_qwen2(model, output_, save);
    spdlog::info("wrote {}", output_);
    return 0;
  }

 private:
  std::string output_;
  bool force_ = false;
};

C3_REGISTER_COMMAND(InitCommand);

}  // namespace c3::cli
