// C3 checkpoints in the authors' released layout: the root folder is the decoder plus
// model.Q.weight and model.mm_projector.{weight,bias} with a config.json of model_type "C3";
// llm1/ is the encoder as a plain Qwen2 checkpoint; tokenizer files sit at the root.
#pragma once

#include <torch/torch.h>

#include <filesystem>
#include <optional>

#include "c3/model/c3_model.h"
#include "c3/model/qwen2_io.h"
#include "c3/tokenizer/tokenizer.h"

namespace c3 {

inline constexpr const char* kEncoderSubdir = "llm1";

struct C3LoadOptions {
  std::optional<at::ScalarType> dtype;  // default: the checkpoint's own
  at::Device device = at::kCPU;
  std::optional<int64_t> latent_tokens;  // N wanted; default: the checkpoint's
  bool allow_resize_latents = false;     // else a different N is an error
  uint64_t seed = 0;                     // for freshly initialised Q rows / projector
  // LoRA adapters in the folder (adapter_config.json at the root for the decoder, in llm1/ for the
  // encoder) are loaded onto their side; merged into the weights (inference at full speed) or kept
  // apart (training goes on with them).
  bool merge_adapters = false;
  // "int8": C3Codec::load gives the decoder weight-only int8 copies for decoding on the CPU
  // (Qwen2ForCausalLM::quantize_int8); "none": the float weights alone. kQuantizeChoices.
  std::string quantize = "none";
};
inline const std::vector<std::string> kQuantizeChoices{"none", "int8"};

bool is_c3_checkpoint(const std::filesystem::path& dir);  // config.json says model_type "C3"

// Reads both config.json files; vocabulary sizes and N come from the stored tensor shapes.
C3Config read_c3_config(const std::filesystem::path& dir);

C3Model load_c3(const std::filesystem::path& dir, const C3LoadOptions& options = {});

// One LLM of a new C3 model: a Hugging Face Qwen2 folder (pretrained), or, when `dir` is empty,
// an architecture to initialise from scratch.
struct Qwen2Source {
  std::filesystem::path dir;
  Qwen2Config architecture;
  int64_t layers = 0;  // keep only the first `layers` decoder layers of the folder's model (0: all)
};

// A new C3 model: each side loaded from its folder (any sizes) or initialised as HF does; Q and
// the projector drawn from options.seed (N = options.latent_tokens).
C3Model c3_from_qwen2(const Qwen2Source& encoder, const Qwen2Source& decoder, const C3LoadOptions& options);
inline C3Model c3_from_qwen2(const std::filesystem::path& encoder_dir, const std::filesystem::path& decoder_dir,
                             const C3LoadOptions& options) {
  return c3_from_qwen2(Qwen2Source{encoder_dir, {}}, Qwen2Source{decoder_dir, {}}, options);
}

// The same model with embedding tables (and an untied lm_head) of `rows` rows on both sides; rows
// a side lacks are the mean of its existing rows (a new token starts as an average one, as HF's
// resize_token_embeddings centres them). Sides with enough rows keep theirs.
C3Model grow_vocabulary(C3Model& model, int64_t rows);

// What `c3 init OUT --encoder E --decoder D` writes: an untrained C3 of two LLM folders (any
// family c3 runs, any widths), its tokenizer (from `tokenizer`, else the decoder's folder) with
// C3's <imgpad> <img> </img> added after its largest id when missing and embedding rows grown to
// match, the encoder cut to its first `encoder_layers` layers (0: all), Q and the projector drawn as
// c3 train draws them; in the released layout, tokenizer files at the root and in llm1/.
struct C3AssembleOptions {
  int64_t latent_tokens = 32;
  int64_t encoder_layers = 0;
  uint64_t seed = 0;
  std::filesystem::path tokenizer;
  SaveOptions save;
};
C3Config assemble_c3(const std::filesystem::path& encoder, const std::filesystem::path& decoder,
                     const std::filesystem::path& out, const C3AssembleOptions& options);
// The same C3 in memory (float32), for a tokenizer that has the image tokens already; `options`'
// tokenizer and save fields are not used.
C3Model assemble_c3_model(const std::filesystem::path& encoder, const std::filesystem::path& decoder,
                          const Tokenizer& tokenizer, const C3AssembleOptions& options);

// The pieces of the released layout beside the weights: both config.json files (llm1/ made), and
// each side's LoRA adapter (the decoder's at the root, the encoder's in llm1/), written or loaded
// (merged into the weights or kept apart).
void write_c3_configs(const C3Config& config, const std::filesystem::path& dir);
void write_c3_adapters(C3Model& model, const std::filesystem::path& dir, std::optional<at::ScalarType> dtype);
void load_c3_adapters(C3Model& model, const std::filesystem::path& dir, bool merge);

// Writes the released layout into `dir`, which must exist (no atomicity: save_c3 adds it). A side
// with a LoRA adapter keeps its base weights in model.safetensors and the adapter beside them, as
// PEFT saves it (c3/model/lora.h).
void write_c3(C3Model& model, const std::filesystem::path& dir, std::optional<at::ScalarType> dtype,
              std::uint64_t max_shard_bytes);

// The whole checkpoint folder, complete or not at all; tokenizer files are copied from
// `tokenizer_source` (a folder or a file; empty: none).
void save_c3(C3Model& model, const std::filesystem::path& dir, const SaveOptions& options,
             const std::filesystem::path& tokenizer_source);

}  // namespace c3
