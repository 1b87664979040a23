// c3 init OUTPUT: a randomly initialised Qwen2 checkpoint in Hugging Face layout (for training
// from scratch, tests and benchmarks); with --encoder and --decoder, an untrained C3 assembled from
// two pretrained LLM folders.
#include <spdlog/spdlog.h>

#include "c3/io/checkpoint_dir.h"
#include "c3/model/c3_io.h"
#include "c3/model/checkpoint_info.h"
#include "c3/model/qwen2_io.h"
#include "c3/util/dtype.h"
#include "c3/util/error.h"
#include "settings_table.h"

namespace c3::cli {
namespace {

// What `c3 init` writes.
struct InitSettings {
  std::string preset, model_config, dtype, encoder, decoder, tokenizer;
  int64_t seed = 0, max_shard_bytes = 0, latent_tokens = 32, encoder_layers = 0;
};

// Every init.* key, its flag, default and help, and the field it fills.
const SettingsTable<InitSettings>& init_table() {
  static const SettingsTable<InitSettings> table = [] {
    SettingsTable<InitSettings> t;
    t.value("--preset", "init.preset", "tiny", "Architecture preset", C3_FIELD(preset), {"tiny", "0.5b", "1.5b", "3b"});
    t.path("--model-config", "init.model_config", "",
           "Hugging Face config.json to take the architecture from (overrides --preset)", C3_FIELD(model_config));
    t.value("--dtype", "init.dtype", "float32", "Stored dtype", C3_FIELD(dtype), {"float32", "bfloat16", "float16"});
    t.value("--seed", "init.seed", 0, "Random seed", C3_FIELD(seed));
    t.value("--max-shard-bytes", "init.max_shard_bytes", int64_t{5} << 30,
            "Split the weights into shards of at most this many bytes", C3_FIELD(max_shard_bytes));
    t.path("--encoder", "init.encoder", "", "With --decoder: assemble a C3 whose encoder is this LLM folder",
           C3_FIELD(encoder));
    t.path("--decoder", "init.decoder", "", "With --encoder: the C3's decoder LLM folder", C3_FIELD(decoder));
    t.path("--tokenizer", "init.tokenizer", "", "The C3's tokenizer (default: the decoder's)", C3_FIELD(tokenizer));
    t.value("--latent-tokens", "init.latent_tokens", 32, "N, the latent vectors per text (a C3)",
            C3_FIELD(latent_tokens));
    t.value("--encoder-layers", "init.encoder_layers", 0, "Keep only the encoder's first K layers (0: all)",
            C3_FIELD(encoder_layers));
    return t;
  }();
  return table;
}

}  // namespace

class InitCommand : public Command {
 public:
  std::string name() const override { return "init"; }
  std::string summary() const override {
    return "Write a randomly initialised Qwen2 checkpoint folder, or a C3 assembled from two LLMs (--encoder, "
           "--decoder)";
  }
  void setup(CLI::App& app, Options& options) override {
    app.add_option("output", output_, "Checkpoint folder to create")->required();
    app.add_flag("--force", force_, "Replace OUTPUT if it exists");
    init_table().declare(app, options);
  }
  int run(const Config& config, const Runtime&) override {
    if (std::filesystem::exists(output_) && !force_) fail_file(output_, "already exists (pass --force to replace it)");
    InitSettings s;
    init_table().read(config, s);
    if (s.max_shard_bytes <= 0) throw UsageError("--max-shard-bytes must be positive");
    if (!s.encoder.empty() || !s.decoder.empty()) return assemble(s);
    Qwen2Config arch = s.model_config.empty()
                           ? Qwen2Config::preset(s.preset)
                           : Qwen2Config::from_json(io::read_json_file(s.model_config), s.model_config);
    spdlog::info("initialising {} parameters (seed {})", human_count(arch.parameter_count()), s.seed);
    Qwen2ForCausalLM model(arch);
    model->init_weights(static_cast<uint64_t>(s.seed));
    SaveOptions save;
    save.dtype = scalar_type_from_name(s.dtype);
    save.max_shard_bytes = static_cast<uint64_t>(s.max_shard_bytes);
    save.overwrite = force_;
    save_qwen2(model, output_, save);
    spdlog::info("wrote {}", output_);
    return 0;
  }

 private:
  int assemble(const InitSettings& s) const {
    if (s.encoder.empty() || s.decoder.empty()) throw UsageError("a C3 needs both --encoder and --decoder");
    if (s.encoder_layers < 0) throw UsageError("--encoder-layers must be >= 0");
    C3AssembleOptions o;
    o.latent_tokens = s.latent_tokens;
    o.encoder_layers = s.encoder_layers;
    o.seed = static_cast<uint64_t>(s.seed);
    o.tokenizer = s.tokenizer;
    o.save.dtype = scalar_type_from_name(s.dtype);
    o.save.max_shard_bytes = static_cast<uint64_t>(s.max_shard_bytes);
    o.save.overwrite = force_;
    const C3Config c = assemble_c3(s.encoder, s.decoder, output_, o);
    spdlog::info(
        "wrote {}: a C3 of a {} encoder ({} layers, hidden {}) and a {} decoder ({} layers, hidden {}), {} latent "
        "tokens, {} parameters; train it with c3 train --checkpoint {}",
        output_, c.encoder.model_type, c.encoder.num_hidden_layers, c.encoder.hidden_size, c.decoder.model_type,
        c.decoder.num_hidden_layers, c.decoder.hidden_size, c.latent_tokens, human_count(c.parameter_count()), output_);
    return 0;
  }

  std::string output_;
  bool force_ = false;
};

C3_REGISTER_COMMAND(InitCommand);

}  // namespace c3::cli
