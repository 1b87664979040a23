// A trained C3 shipped lean: only what training changed over the base C3 that `c3 init` assembles
// from public LLMs (the pretrained weights are fetched and imported, not shipped). The part is a
// folder with the C3's config.json files and tokenizer, the init recipe (c3_init.json: the base
// LLMs' weight digests, encoder layers, N, seed), lean.safetensors (every tensor that differs from
// the base: Q, the projector, anything fully trained) and the LoRA adapters as PEFT saves them.
// `c3 assemble` rebuilds the whole checkpoint from base + part.
#pragma once

#include <cstdint>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "c3/model/c3_model.h"

namespace c3 {

inline constexpr const char* kInitRecipeFile = "c3_init.json";
inline constexpr const char* kLeanWeightsFile = "lean.safetensors";

// How `c3 init --encoder E --decoder D` made a C3: enough to make it again, and to check that the
// LLM folders given then are the same weights.
struct InitRecipe {
  std::string encoder_sha256, decoder_sha256;  // weights_digest of each LLM folder
  int64_t latent_tokens = 0;
  int64_t encoder_layers = 0;
  uint64_t seed = 0;

  nlohmann::json to_json() const;
  static InitRecipe read(const std::filesystem::path& dir);  // dir/c3_init.json; errors name the file
};

// SHA-256 of an LLM folder's weights: the digests of its .safetensors files, in name order.
std::string weights_digest(const std::filesystem::path& llm_dir);

struct C3AssembleOptions;
// The recipe of a C3 assembled from these LLM folders (one digest when they are the same folder).
InitRecipe make_init_recipe(const std::filesystem::path& encoder, const std::filesystem::path& decoder,
                            const C3AssembleOptions& options);

// Writes the lean part of `model` (loaded from a checkpoint whose tokenizer is in
// `tokenizer_source`) against `base`, the C3 folder c3 init wrote (with its c3_init.json), into
// `out`, complete or not at all. Returns the bytes of lean.safetensors.
int64_t write_lean_part(C3Model& model, const std::filesystem::path& base,
                        const std::filesystem::path& tokenizer_source, const std::filesystem::path& out,
                        std::optional<at::ScalarType> dtype, bool overwrite);

// The full checkpoint from a lean part and the base LLM folders (checked against the recipe's
// digests), written to `out` complete or not at all.
C3Config assemble_lean_part(const std::filesystem::path& part, const std::filesystem::path& encoder,
                            const std::filesystem::path& decoder, const std::filesystem::path& out, bool overwrite);

}  // namespace c3
