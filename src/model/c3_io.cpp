#include "c3/model/c3_io.h"

#include <spdlog/spdlog.h>

#include "c3/io/checkpoint_dir.h"
#include "c3/model/lean_part.h"
#include "c3/model/lora.h"
#include "c3/tokenizer/tokenizer.h"
#include "c3/util/atomic_file.h"
#include "c3/util/dtype.h"
#include "c3/util/error.h"

namespace fs = std::filesystem;

namespace c3 {
namespace {

constexpr const char* kQuery = "model.Q.weight";

// The vocabulary size a checkpoint really has is the number of rows it stores (the released C3
// decoder has 151860 rows whatever its config says).
void vocab_from_shapes(Qwen2Config& config, const io::CheckpointDir& ckpt) {
  const std::string name = "model.embed_tokens.weight";
  if (ckpt.contains(name)) config.vocab_size = ckpt.tensor(name).shape.at(0);
}

Qwen2Config qwen2_config_of(const io::CheckpointDir& ckpt) {
  Qwen2Config config = Qwen2Config::from_json(ckpt.config(), ckpt.config_path().string());
  vocab_from_shapes(config, ckpt);
  for (const char* key : {"latent_token_len", "contexts_compression_llm_hidden_size", "model_type", "architectures",
                          "c3_max_length", "c3_max_text_tokens"})
    config.extra.erase(key);
  return config;
}

at::TensorOptions options_for(const C3LoadOptions& options, const Qwen2Config& config) {
  const at::ScalarType type = options.dtype ? *options.dtype : scalar_type_from_name(config.dtype);
  return at::TensorOptions().dtype(type).device(options.device);
}

void copy_checked(at::Tensor& destination, const io::CheckpointDir& ckpt, const std::string& name) {
  if (!ckpt.contains(name)) fail_file(ckpt.dir().string(), "missing tensor '" + name + "'");
  const io::TensorInfo& info = ckpt.tensor(name);
  const std::vector<int64_t> want(destination.sizes().begin(), destination.sizes().end());
  if (info.shape != want)
    fail_file(ckpt.file_of(name).string(), "tensor '" + name + "' has shape " + io::shape_string(info.shape) +
                                               " but the model expects " + io::shape_string(want));
  io::copy_tensor(destination, info, ckpt.file_of(name).string());
}

at::Tensor stored_fp32(const io::CheckpointDir& ckpt, const std::string& name) {
  return io::load_tensor(ckpt.tensor(name), at::kFloat, at::kCPU, ckpt.file_of(name).string());
}

void load_qwen2_parameters(Qwen2ForCausalLM& model, const io::CheckpointDir& ckpt, std::vector<std::string> ignore) {
  LoadOptions opts;
  opts.ignore_prefixes = std::move(ignore);
  if (model->config().tie_word_embeddings) opts.ignore_prefixes.push_back("lm_head.");
  load_parameters(*model, ckpt, opts);
}

}  // namespace

bool is_c3_checkpoint(const fs::path& dir) {
  std::error_code ec;
  if (!fs::exists(dir / io::CheckpointDir::kConfigFile, ec)) return false;
  const auto config = io::read_json_file(dir / io::CheckpointDir::kConfigFile);
  return config.is_object() && config.contains("model_type") && config["model_type"] == "C3";
}

namespace {

C3Config c3_config_of(const fs::path& dir) {
  if (!is_c3_checkpoint(dir))
    fail_file((dir / io::CheckpointDir::kConfigFile).string(), "not a C3 checkpoint (model_type is not \"C3\")");
  std::error_code ec;
  if (fs::exists(dir / kLeanWeightsFile, ec) && !fs::exists(dir / io::CheckpointDir::kSingleFile, ec) &&
      !fs::exists(dir / io::CheckpointDir::kIndexFile, ec))
    fail_file(dir.string(),
              "is a lean part (what training changed, without the base weights): rebuild the model with "
              "c3 assemble " +
                  dir.string() + " --encoder LLM_FOLDER -o MODEL");
  io::CheckpointDir root(dir), llm1(dir / kEncoderSubdir);
  C3Config config;
  config.decoder = qwen2_config_of(root);
  config.encoder = qwen2_config_of(llm1);
  if (!root.contains(kQuery)) fail_file(dir.string(), std::string("missing tensor '") + kQuery + "'");
  const auto& q = root.tensor(kQuery).shape;
  if (q.size() != 2 || q[1] != config.encoder.hidden_size)
    fail_file(root.file_of(kQuery).string(), std::string("'") + kQuery + "' has shape " + io::shape_string(q) +
                                                 " but the encoder in llm1/ has hidden size " +
                                                 std::to_string(config.encoder.hidden_size));
  config.latent_tokens = q[0];
  config.max_length = root.config().value("c3_max_length", int64_t{0});
  config.max_text_tokens = root.config().value("c3_max_text_tokens", int64_t{0});
  const auto stated = root.config().value("latent_token_len", config.latent_tokens);
  if (stated != config.latent_tokens)
    spdlog::warn("{}: config.json says latent_token_len {} but {} has {} rows; using {}", dir.string(), stated, kQuery,
                 config.latent_tokens, config.latent_tokens);
  return config;
}

}  // namespace

C3Config read_c3_config(const fs::path& dir) {
  return io::with_json_errors((dir / io::CheckpointDir::kConfigFile).string(), [&] { return c3_config_of(dir); });
}

C3Model load_c3(const fs::path& dir, const C3LoadOptions& options) {
  C3Config config = read_c3_config(dir);
  const int64_t stored_n = config.latent_tokens;
  const int64_t wanted_n = options.latent_tokens.value_or(stored_n);
  if (wanted_n != stored_n && !options.allow_resize_latents)
    throw UsageError(dir.string() + ": the checkpoint has " + std::to_string(stored_n) +
                     " latent tokens but the config asks for " + std::to_string(wanted_n) +
                     " (set model.resize_latents=true to re-initialise the context query Q)");
  config.latent_tokens = wanted_n;
  C3Model model(config, options_for(options, config.decoder));
  io::CheckpointDir root(dir), llm1(dir / kEncoderSubdir);
  load_qwen2_parameters(model->decoder, root, {"model.Q.", "model.mm_projector."});
  load_qwen2_parameters(model->encoder, llm1, {});
  load_c3_adapters(model, dir, options.merge_adapters);
  torch::NoGradGuard no_grad;
  copy_checked(model->projector->weight, root, "model.mm_projector.weight");
  copy_checked(model->projector->bias, root, "model.mm_projector.bias");
  if (wanted_n == stored_n) {
    copy_checked(model->query, root, kQuery);
    // The fingerprint of the weights as stored: the same model loaded in another dtype keeps it.
    model->pin_fingerprint(c3_fingerprint(model->config(), stored_fp32(root, kQuery),
                                          stored_fp32(root, "model.mm_projector.weight"),
                                          stored_fp32(root, "model.mm_projector.bias")));
  } else {
    at::Tensor stored = stored_fp32(root, kQuery);
    model->query.copy_(resize_query(stored, wanted_n, config.encoder.initializer_range, options.seed));
    spdlog::warn(
        "{}: latent tokens changed from {} to {}: Q rows 0..{} kept from the checkpoint, {} new rows drawn "
        "from normal(0, {}) with seed {}",
        dir.string(), stored_n, wanted_n, std::min(stored_n, wanted_n) - 1, std::max<int64_t>(0, wanted_n - stored_n),
        config.encoder.initializer_range, options.seed);
  }
  return model;
}

namespace {

// A side's config from its folder (or architecture), cut to `source.layers` layers; the prefixes
// of the layers left out, which loading then skips.
Qwen2Config side_config(const Qwen2Source& source, const std::optional<io::CheckpointDir>& dir,
                        std::vector<std::string>& skipped) {
  Qwen2Config config = dir ? qwen2_config_of(*dir) : source.architecture;
  if (source.layers <= 0) return config;
  if (source.layers > config.num_hidden_layers)
    fail_file(source.dir.string(), "has " + std::to_string(config.num_hidden_layers) + " layers, fewer than the " +
                                       std::to_string(source.layers) + " asked to keep");
  for (int64_t l = source.layers; l < config.num_hidden_layers; ++l)
    skipped.push_back("model.layers." + std::to_string(l) + ".");
  config.num_hidden_layers = source.layers;
  return config;
}

}  // namespace

C3Model c3_from_qwen2(const Qwen2Source& encoder, const Qwen2Source& decoder, const C3LoadOptions& options) {
  std::optional<io::CheckpointDir> enc, dec;
  if (!encoder.dir.empty()) enc.emplace(encoder.dir);
  if (!decoder.dir.empty()) dec.emplace(decoder.dir);
  std::vector<std::string> enc_skipped, dec_skipped;
  C3Config config;
  config.encoder = side_config(encoder, enc, enc_skipped);
  config.decoder = side_config(decoder, dec, dec_skipped);
  config.latent_tokens = options.latent_tokens.value_or(32);
  C3Model model(config, options_for(options, config.decoder));
  model->init_weights(options.seed);  // what a folder provides is overwritten next
  if (enc) load_qwen2_parameters(model->encoder, *enc, enc_skipped);
  if (dec) load_qwen2_parameters(model->decoder, *dec, dec_skipped);
  return model;
}

C3Model grow_vocabulary(C3Model& model, int64_t rows) {
  C3Config config = model->config();
  config.encoder.vocab_size = std::max(config.encoder.vocab_size, rows);
  config.decoder.vocab_size = std::max(config.decoder.vocab_size, rows);
  const at::Tensor any = model->query;
  C3Model grown(config, at::TensorOptions().dtype(any.scalar_type()).device(any.device()));
  torch::NoGradGuard no_grad;
  auto from = model->named_parameters(/*recurse=*/true);
  for (auto& item : grown->named_parameters(/*recurse=*/true)) {
    const at::Tensor& old = from[item.key()];
    at::Tensor& now = item.value();
    if (old.sizes() == now.sizes()) {
      now.copy_(old);
    } else {  // an embedding table or lm_head: [vocab, hidden]
      now.narrow(0, 0, old.size(0)).copy_(old);
      now.narrow(0, old.size(0), now.size(0) - old.size(0))
          .copy_(old.mean(0, /*keepdim=*/true).expand({now.size(0) - old.size(0), -1}));
    }
  }
  grown->set_trained_lengths(model->config().max_length, model->config().max_text_tokens);
  return grown;
}

C3Model assemble_c3_model(const fs::path& encoder, const fs::path& decoder, const Tokenizer& tokenizer,
                          const C3AssembleOptions& o) {
  if (o.latent_tokens <= 0) throw UsageError("--latent-tokens must be positive");
  C3LoadOptions load;
  load.dtype = at::kFloat;
  load.latent_tokens = o.latent_tokens;
  load.seed = o.seed;
  Qwen2Source encoder_side, decoder_side;
  encoder_side.dir = encoder, encoder_side.layers = o.encoder_layers;
  decoder_side.dir = decoder;
  C3Model model = c3_from_qwen2(encoder_side, decoder_side, load);
  int64_t rows = tokenizer.vocab_size();
  for (const auto& token : c3_image_tokens()) {
    const auto id = tokenizer.token_id(token);
    if (!id) fail_file(tokenizer.source(), "has no " + token);
    rows = std::max<int64_t>(rows, *id + 1);
  }
  if (rows > std::min(model->config().encoder.vocab_size, model->config().decoder.vocab_size)) {
    spdlog::info("embedding tables grown to {} rows for the tokenizer's ids (new rows: the mean of the old ones)",
                 rows);
    model = grow_vocabulary(model, rows);
  }
  return model;
}

C3Config assemble_c3(const fs::path& encoder, const fs::path& decoder, const fs::path& out,
                     const C3AssembleOptions& o) {
  if (o.latent_tokens <= 0) throw UsageError("--latent-tokens must be positive");
  const fs::path tokenizer_source = o.tokenizer.empty() ? decoder : o.tokenizer;
  const auto tokenizer = load_tokenizer(tokenizer_source);
  AtomicDirectory staged(out, o.save.overwrite);
  // The tokenizer the C3 reads with: C3's image tokens added when missing.
  const auto added = write_tokenizer_with_c3_tokens(tokenizer_source, *tokenizer, staged.staging());
  for (const auto& [token, id] : added) spdlog::info("added {} to the tokenizer as id {}", token, id);
  C3Model model = assemble_c3_model(encoder, decoder, *load_tokenizer(staged.staging()), o);
  write_c3(model, staged.staging(), o.save.dtype, o.save.max_shard_bytes);
  copy_tokenizer_files(staged.staging(), staged.staging() / kEncoderSubdir);
  // The recipe, so that a model trained from this one can ship as what training changed.
  const InitRecipe recipe = make_init_recipe(encoder, decoder, o);
  write_file_atomically(staged.staging() / kInitRecipeFile, recipe.to_json().dump(2) + "\n");
  staged.commit();
  return model->config();
}

void write_c3_configs(const C3Config& config, const fs::path& dir) {
  fs::create_directories(dir / kEncoderSubdir);
  write_file_atomically(dir / io::CheckpointDir::kConfigFile, config.root_config_json().dump(2) + "\n");
  write_file_atomically(dir / kEncoderSubdir / io::CheckpointDir::kConfigFile, config.encoder.to_json().dump(2) + "\n");
}

void load_c3_adapters(C3Model& model, const fs::path& dir, bool merge) {
  for (auto [side, folder] :
       {std::pair{model->decoder.get(), dir}, std::pair{model->encoder.get(), dir / kEncoderSubdir}}) {
    if (!has_adapter(folder)) continue;
    load_adapter(*side, folder);
    if (merge) merge_lora(*side);
  }
}

void write_c3_adapters(C3Model& model, const fs::path& dir, std::optional<at::ScalarType> dtype) {
  if (lora_config_of(*model->decoder)) write_adapter(*model->decoder, dir, dtype);
  if (lora_config_of(*model->encoder)) write_adapter(*model->encoder, dir / kEncoderSubdir, dtype);
}

void write_c3(C3Model& model, const fs::path& dir, std::optional<at::ScalarType> dtype, std::uint64_t max_shard_bytes) {
  std::vector<std::pair<std::string, at::Tensor>> root, encoder;
  at::ScalarType stored = at::kFloat;
  for (const auto& item : model->named_parameters(/*recurse=*/true)) {
    if (is_lora_parameter(item.key())) continue;  // written apart, below
    at::Tensor t = item.value().detach();
    if (dtype) t = t.to(*dtype);
    stored = t.scalar_type();
    const CheckpointName where = checkpoint_name(item.key());
    (where.encoder ? encoder : root).emplace_back(where.name, t);
  }
  C3Config config = model->config();
  config.encoder.dtype = config.decoder.dtype = scalar_type_name(stored);
  write_c3_configs(config, dir);
  io::write_safetensors_shards(root, dir, max_shard_bytes);
  io::write_safetensors_shards(encoder, dir / kEncoderSubdir, max_shard_bytes);
  write_c3_adapters(model, dir, dtype);
}

void save_c3(C3Model& model, const fs::path& dir, const SaveOptions& options, const fs::path& tokenizer_source) {
  AtomicDirectory out(dir, options.overwrite);
  write_c3(model, out.staging(), options.dtype, options.max_shard_bytes);
  if (!tokenizer_source.empty()) copy_tokenizer_files(tokenizer_source, out.staging());
  out.commit();
}

}  // namespace c3
