// c3 export MODEL -o OUT: a C3 checkpoint (or a training run's newest) written as a model to use or
// share: the weights and tokenizer without the optimizer state, in a chosen dtype, with LoRA
// adapters kept beside the weights as PEFT saves them or (--merge) folded into them.
#include <spdlog/spdlog.h>

#include "c3/model/c3_io.h"
#include "c3/model/checkpoint_info.h"
#include "c3/model/lean_part.h"
#include "c3/model/lora.h"
#include "c3/model/run_folder.h"
#include "c3/util/dtype.h"
#include "c3/util/error.h"
#include "settings_table.h"

namespace c3::cli {
namespace {

struct ExportSettings {
  std::string output, dtype, lean_base;
  bool merge = false;
};

const SettingsTable<ExportSettings>& export_table() {
  static const SettingsTable<ExportSettings> table = [] {
    SettingsTable<ExportSettings> t;
    t.path("-o,--output", "export.output", "", "Folder to create", C3_FIELD(output));
    t.value("--dtype", "export.dtype", "auto", "Stored dtype (auto: the checkpoint's own)", C3_FIELD(dtype),
            {"auto", "float32", "bfloat16", "float16"});
    t.value("--merge", "export.merge", false,
            "Fold LoRA adapters into the weights (a plain C3 that runs at full speed anywhere); else they are kept "
            "beside the weights as adapter_model.safetensors + adapter_config.json",
            C3_FIELD(merge));
    t.path("--lean-base", "export.lean_base", "",
           "Write only what training changed over this base C3 (the folder c3 init assembled, with its c3_init.json): "
           "a part that c3 assemble turns back into the whole model from the public LLMs",
           C3_FIELD(lean_base));
    return t;
  }();
  return table;
}

}  // namespace

class ExportCommand : public Command {
 public:
  std::string name() const override { return "export"; }
  std::string summary() const override {
    return "Write a C3 checkpoint (or a training run's newest) as a model folder: no optimizer state, any dtype, LoRA "
           "merged on request";
  }
  void setup(CLI::App& app, Options& options) override {
    app.add_option("model", model_, "C3 checkpoint folder, or a training run's output folder")->required();
    app.add_flag("--force", force_, "Replace OUTPUT if it exists");
    export_table().declare(app, options);
  }
  int run(const Config& config, const Runtime&) override {
    ExportSettings s;
    export_table().read(config, s);
    if (s.output.empty()) throw UsageError("-o/--output (the folder to create) is required");
    if (std::filesystem::exists(s.output) && !force_)
      fail_file(s.output, "already exists (pass --force to replace it)");
    const std::filesystem::path from = resolve_c3_checkpoint(model_);
    if (std::filesystem::weakly_canonical(from) == std::filesystem::weakly_canonical(s.output))
      throw UsageError("--output is the model being exported");
    if (!s.lean_base.empty() && s.merge) throw UsageError("--lean-base keeps the adapters apart: leave out --merge");
    C3LoadOptions load;
    load.merge_adapters = s.merge;
    C3Model model = load_c3(from, load);
    const bool adapters = lora_config_of(*model->encoder) || lora_config_of(*model->decoder);
    if (!s.lean_base.empty()) {
      const auto dtype = s.dtype == "auto" ? std::nullopt : std::optional(scalar_type_from_name(s.dtype));
      const int64_t bytes = write_lean_part(model, s.lean_base, from, s.output, dtype, force_);
      spdlog::info(
          "wrote {}: what training changed over {} ({} of trained tensors{}); rebuild the model with c3 assemble",
          s.output, s.lean_base, human_bytes(bytes), adapters ? ", plus LoRA adapters" : "");
      return 0;
    }
    SaveOptions save;
    if (s.dtype != "auto") save.dtype = scalar_type_from_name(s.dtype);
    save.overwrite = force_;
    save_c3(model, s.output, save, from);
    spdlog::info("wrote {} from {} ({} parameters{})", s.output, from.string(),
                 human_count(model->config().parameter_count()),
                 adapters  ? ", LoRA adapters beside the weights"
                 : s.merge ? ", LoRA merged where there was any"
                           : "");
    return 0;
  }

 private:
  std::string model_;
  bool force_ = false;
};

C3_REGISTER_COMMAND(ExportCommand);

}  // namespace c3::cli
