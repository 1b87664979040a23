// c3 import FILE.gguf -o DIR: a GGUF model as a Hugging Face checkpoint folder.
#include <spdlog/spdlog.h>

#include "c3/model/gguf_import.h"
#include "c3/util/dtype.h"
#include "c3/util/error.h"
#include "settings_table.h"

namespace c3::cli {
namespace {

struct ImportSettings {
  std::string output, dtype;
  bool force = false, weights_only = false;
};

// Every import.* key, its flag, default and help, and the field it fills.
const SettingsTable<ImportSettings>& import_table() {
  static const SettingsTable<ImportSettings> table = [] {
    SettingsTable<ImportSettings> t;
    t.path("-o,--output", "import.output", "", "Folder to create (config.json, model.safetensors)", C3_FIELD(output));
    t.value("--dtype", "import.dtype", "float32", "dtype of the weights written", C3_FIELD(dtype),
            {"float32", "bfloat16"});
    t.value("--force", "import.force", false, "Replace the output folder if it exists", C3_FIELD(force));
    t.value("--weights-only", "import.weights_only", false,
            "Write config.json and the weights, not the tokenizer (for a tokenizer type c3 does not convert)",
            C3_FIELD(weights_only));
    return t;
  }();
  return table;
}

}  // namespace

class ImportCommand : public Command {
 public:
  std::string name() const override { return "import"; }
  std::string summary() const override {
    return "Convert a GGUF model (llama, qwen2, qwen3) into a Hugging Face checkpoint folder";
  }
  void setup(CLI::App& app, Options& o) override {
    app.add_option("gguf", gguf_, "The .gguf file")->required();
    import_table().declare(app, o);
  }
  int run(const Config& c, const Runtime&) override {
    ImportSettings s;
    import_table().read(c, s);
    if (s.output.empty()) throw UsageError("-o DIR (the folder to create) is required");
    GgufImportOptions options;
    options.dtype = scalar_type_from_name(s.dtype);
    options.overwrite = s.force;
    options.weights_only = s.weights_only;
    const Qwen2Config config = import_gguf(gguf_, s.output, options);
    spdlog::info("imported {} ({}: {} layers, hidden {}, {} parameters{}) into {} as {}", gguf_, config.model_type,
                 config.num_hidden_layers, config.hidden_size, config.parameter_count(),
                 s.weights_only ? "; no tokenizer" : ", with its tokenizer", s.output, s.dtype);
    return 0;
  }

 private:
  std::string gguf_;
};

C3_REGISTER_COMMAND(ImportCommand);

}  // namespace c3::cli
