// c3 assemble PART --encoder E --decoder D -o OUT: the whole C3 checkpoint from a lean part (what
// training changed, c3 export --lean-base) and the public LLM folders it was trained from, checked
// against the part's recipe by SHA-256.
#include <spdlog/spdlog.h>

#include "c3/model/lean_part.h"
#include "c3/util/error.h"
#include "settings_table.h"

namespace c3::cli {
namespace {

struct AssembleSettings {
  std::string output, encoder, decoder;
};

const SettingsTable<AssembleSettings>& assemble_table() {
  static const SettingsTable<AssembleSettings> table = [] {
    SettingsTable<AssembleSettings> t;
    t.path("-o,--output", "assemble.output", "", "Checkpoint folder to create", C3_FIELD(output));
    t.path("--encoder", "assemble.encoder", "", "The encoder's LLM folder (as c3 import wrote it)", C3_FIELD(encoder));
    t.path("--decoder", "assemble.decoder", "", "The decoder's LLM folder (default: --encoder's)", C3_FIELD(decoder));
    return t;
  }();
  return table;
}

}  // namespace

class AssembleCommand : public Command {
 public:
  std::string name() const override { return "assemble"; }
  std::string summary() const override {
    return "Rebuild a whole C3 checkpoint from a lean part (c3 export --lean-base) and the LLM folders it was trained "
           "from";
  }
  void setup(CLI::App& app, Options& options) override {
    app.add_option("part", part_, "The lean part's folder (lean.safetensors, c3_init.json, adapters, tokenizer)")
        ->required();
    app.add_flag("--force", force_, "Replace OUTPUT if it exists");
    assemble_table().declare(app, options);
  }
  int run(const Config& config, const Runtime&) override {
    AssembleSettings s;
    assemble_table().read(config, s);
    if (s.output.empty()) throw UsageError("-o/--output (the folder to create) is required");
    if (s.encoder.empty()) throw UsageError("--encoder (the LLM folder the part was trained from) is required");
    if (s.decoder.empty()) s.decoder = s.encoder;
    if (std::filesystem::exists(s.output) && !force_)
      fail_file(s.output, "already exists (pass --force to replace it)");
    assemble_lean_part(part_, s.encoder, s.decoder, s.output, force_);
    return 0;
  }

 private:
  std::string part_;
  bool force_ = false;
};

C3_REGISTER_COMMAND(AssembleCommand);

}  // namespace c3::cli
