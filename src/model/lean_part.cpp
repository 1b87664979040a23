#include "c3/model/lean_part.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <set>

#include "c3/io/checkpoint_dir.h"
#include "c3/io/safetensors.h"
#include "c3/io/tensor_io.h"
#include "c3/model/c3_io.h"
#include "c3/model/lora.h"
#include "c3/tokenizer/tokenizer.h"
#include "c3/util/atomic_file.h"
#include "c3/util/error.h"
#include "c3/util/sha256.h"

namespace fs = std::filesystem;

namespace c3 {
namespace {

// A parameter's name in lean.safetensors: its checkpoint name, under llm1/ for the encoder.
std::string lean_name(const std::string& module_name) {
  const CheckpointName where = checkpoint_name(module_name);
  return (where.encoder ? std::string(kEncoderSubdir) + "/" : std::string()) + where.name;
}

}  // namespace

nlohmann::json InitRecipe::to_json() const {
  return {{"encoder_weights_sha256", encoder_sha256},
          {"decoder_weights_sha256", decoder_sha256},
          {"latent_tokens", latent_tokens},
          {"encoder_layers", encoder_layers},
          {"seed", seed}};
}

InitRecipe InitRecipe::read(const fs::path& dir) {
  const fs::path file = dir / kInitRecipeFile;
  std::error_code ec;
  if (!fs::exists(file, ec))
    fail_file(dir.string(),
              std::string("has no ") + kInitRecipeFile + " (not a C3 that c3 init assembled, nor a lean part)");
  const nlohmann::json j = io::read_json_file(file);
  return io::with_json_errors(file.string(), [&] {
    InitRecipe r;
    r.encoder_sha256 = j.at("encoder_weights_sha256").get<std::string>();
    r.decoder_sha256 = j.at("decoder_weights_sha256").get<std::string>();
    r.latent_tokens = j.at("latent_tokens").get<int64_t>();
    r.encoder_layers = j.at("encoder_layers").get<int64_t>();
    r.seed = j.at("seed").get<uint64_t>();
    return r;
  });
}

std::string weights_digest(const fs::path& llm_dir) {
  std::vector<fs::path> files;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(llm_dir, ec))
    if (entry.path().extension() == ".safetensors") files.push_back(entry.path());
  if (ec || files.empty()) fail_file(llm_dir.string(), "has no .safetensors weights");
  std::sort(files.begin(), files.end());
  Sha256 h;
  for (const auto& f : files) h.update(f.filename().string() + ":" + chunked_file_digest(f, 2) + "\n");
  return h.hex();
}

InitRecipe make_init_recipe(const fs::path& encoder, const fs::path& decoder, const C3AssembleOptions& options) {
  InitRecipe r;
  r.encoder_sha256 = weights_digest(encoder);
  std::error_code ec;
  r.decoder_sha256 = fs::equivalent(encoder, decoder, ec) ? r.encoder_sha256 : weights_digest(decoder);
  r.latent_tokens = options.latent_tokens, r.encoder_layers = options.encoder_layers, r.seed = options.seed;
  return r;
}

int64_t write_lean_part(C3Model& model, const fs::path& base, const fs::path& tokenizer_source, const fs::path& out,
                        std::optional<at::ScalarType> dtype, bool overwrite) {
  const InitRecipe recipe = InitRecipe::read(base);
  C3LoadOptions load;
  load.dtype = at::kFloat;
  C3Model base_model = load_c3(base, load);
  const auto base_params = base_model->named_parameters(/*recurse=*/true);
  std::vector<std::pair<std::string, at::Tensor>> changed;
  for (const auto& item : model->named_parameters(/*recurse=*/true)) {
    if (is_lora_parameter(item.key())) continue;  // the adapters are written whole, below
    const at::Tensor* was = base_params.find(item.key());
    const at::Tensor now = item.value().detach().to(at::kCPU);
    if (!was || was->sizes() != now.sizes())
      fail_file(base.string(),
                "is not the C3 this model was trained from (no parameter '" + item.key() + "' of the same shape)");
    if (now.equal(was->to(now.scalar_type()))) continue;
    changed.emplace_back(lean_name(item.key()), dtype ? now.to(*dtype) : now);
  }
  AtomicDirectory staged(out, overwrite);
  write_c3_configs(model->config(), staged.staging());
  write_file_atomically(staged.staging() / kInitRecipeFile, recipe.to_json().dump(2) + "\n");
  io::write_tensors(staged.staging() / kLeanWeightsFile, changed, {{"format", "pt"}});
  write_c3_adapters(model, staged.staging(), dtype);
  copy_tokenizer_files(tokenizer_source, staged.staging());
  staged.commit();
  return static_cast<int64_t>(fs::file_size(out / kLeanWeightsFile));
}

C3Config assemble_lean_part(const fs::path& part, const fs::path& encoder, const fs::path& decoder, const fs::path& out,
                            bool overwrite) {
  const InitRecipe recipe = InitRecipe::read(part);
  C3AssembleOptions o;
  o.latent_tokens = recipe.latent_tokens, o.encoder_layers = recipe.encoder_layers, o.seed = recipe.seed;
  const InitRecipe given = make_init_recipe(encoder, decoder, o);
  for (const auto& [dir, got, want, side] :
       {std::tuple{encoder, given.encoder_sha256, recipe.encoder_sha256, "encoder"},
        std::tuple{decoder, given.decoder_sha256, recipe.decoder_sha256, "decoder"}})
    if (got != want)
      fail_file(dir.string(), std::string("is not the ") + side +
                                  " LLM this model was trained from (its weights' SHA-256 "
                                  "differs from the one in " +
                                  (part / kInitRecipeFile).string() + ")");
  std::error_code ec;
  if (fs::exists(out, ec) && !overwrite) fail_file(out.string(), "already exists (pass --force to replace it)");
  // The base C3 as c3 init made it, with the part's tokenizer (the image tokens at the same ids).
  C3Model model = assemble_c3_model(encoder, decoder, *load_tokenizer(part), o);

  const fs::path lean_file = part / kLeanWeightsFile;
  const io::SafetensorsReader lean(lean_file);
  std::set<std::string> used;
  {
    torch::NoGradGuard no_grad;
    for (auto& item : model->named_parameters(/*recurse=*/true)) {
      const std::string name = lean_name(item.key());
      const io::TensorInfo* info = lean.find(name);
      if (!info) continue;
      const std::vector<int64_t> want(item.value().sizes().begin(), item.value().sizes().end());
      if (info->shape != want)
        fail_file(lean_file.string(), "tensor '" + name + "' has shape " + io::shape_string(info->shape) +
                                          " but the assembled model has " + io::shape_string(want));
      io::copy_tensor(item.value(), *info, lean_file.string());
      used.insert(name);
    }
  }
  for (const auto& info : lean.tensors())
    if (!used.count(info.name))
      fail_file(lean_file.string(), "unexpected tensor '" + info.name + "' that the model does not have");
  load_c3_adapters(model, part, /*merge=*/false);
  const nlohmann::json root = io::read_json_file(part / io::CheckpointDir::kConfigFile);
  model->set_trained_lengths(root.value("c3_max_length", int64_t{0}), root.value("c3_max_text_tokens", int64_t{0}));
  SaveOptions save;
  save.overwrite = overwrite;
  save_c3(model, out, save, part);
  spdlog::info("assembled {}: the base from {} and {}, {} trained tensors and {} from {}", out.string(),
               encoder.string(), decoder.string(), used.size(),
               lora_config_of(*model->encoder) || lora_config_of(*model->decoder) ? "LoRA adapters" : "no adapters",
               part.string());
  return model->config();
}

}  // namespace c3
