// C3 checkpoints in the authors' released layout: the root folder is the decoder plus
// model.Q.weight and model.mm_projector.{weight,bias} with a config.json of model_type "C3";
// llm1/ is the encoder as a plain Qwen2 checkpoint; tokenizer files sit at the root.
#pragma once

#include <torch/torch.h>

#include <filesystem>
#include <optional>

#include "c3/model/c3_model.h"
#include "c3/model/qwen2_io.h"

namespace c3 {

inline constexpr const char* kEncoderSubdir = "llm1";

struct C3LoadOptions {
  std::optional<at::ScalarType> dtype;  // default: the checkpoint's own
  at::Device device = at::kCPU;
  std::optional<int64_t> latent_tokens;  // N wanted; default: the checkpoint's
  bool allow_resize_latents = false;     // else a different N is an error
  uint64_t seed = 0;                     // for freshly initialised Q rows / projector
};

bool is_c3_checkpoint(const std::filesystem::path& dir);  // config.json says model_type "C3"

// Reads both config.json files; vocabulary sizes and N come from the stored tensor shapes.
C3Config read_c3_config(const std::filesystem::path& dir);

C3Model load_c3(const std::filesystem::path& dir, const C3LoadOptions& options = {});

// One LLM of a new C3 model: a Hugging Face Qwen2 folder (pretrained), or, when `dir` is empty,
// an architecture to initialise from scratch.
struct Qwen2Source {
  std::filesystem::path dir;
  Qwen2Config architecture;
};

// A new C3 model: each side loaded from its folder (any sizes) or initialised as HF does; Q and
// the projector drawn from options.seed (N = options.latent_tokens).
C3Model c3_from_qwen2(const Qwen2Source& encoder, const Qwen2Source& decoder, const C3LoadOptions& options);
inline C3Model c3_from_qwen2(const std::filesystem::path& encoder_dir, const std::filesystem::path& decoder_dir,
                             const C3LoadOptions& options) {
  return c3_from_qwen2(Qwen2Source{encoder_dir, {}}, Qwen2Source{decoder_dir, {}}, options);
}

// Writes the released layout into `dir`, which must exist (no atomicity: save_c3 adds it).
void write_c3(C3Model& model, const std::filesystem::path& dir, std::optional<at::ScalarType> dtype,
              std::uint64_t max_shard_bytes);

// The whole checkpoint folder, complete or not at all; tokenizer files are copied from
// `tokenizer_source` (a folder or a file; empty: none).
void save_c3(C3Model& model, const std::filesystem::path& dir, const SaveOptions& options,
             const std::filesystem::path& tokenizer_source);

}  // namespace c3
