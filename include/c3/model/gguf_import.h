// A GGUF model (llama.cpp's format) as a Hugging Face checkpoint folder that every c3 command
// reads: the architecture from the file's metadata, the tensors dequantized (c3/io/gguf.h) and
// renamed to transformers' names, Llama's Q and K rows put back in the order transformers uses
// (llama.cpp's converter permutes them for its RoPE kernel).
#pragma once

#include <filesystem>
#include <map>
#include <string>

#include <torch/torch.h>

#include "c3/io/gguf.h"
#include "c3/model/qwen2_config.h"

namespace c3 {

// The architectures c3 imports: general.architecture llama, qwen2, qwen3. Errors name the file and
// what it lacks or holds that c3 does not implement.
Qwen2Config gguf_model_config(const io::GgufReader& gguf);

// The transformers name of a GGUF tensor ("blk.3.attn_q.weight" -> "model.layers.3.self_attn.q_proj.weight");
// "" for a name that has none.
std::string hf_tensor_name(const std::string& gguf_name);

// Every tensor as the transformers model holds it, float32.
std::vector<std::pair<std::string, at::Tensor>> gguf_model_tensors(const io::GgufReader& gguf,
                                                                   const Qwen2Config& config);

// The file's tokenizer (tokenizer.ggml.*) as Hugging Face files: tokenizer.json and
// tokenizer_config.json, as transformers' GGUF loader builds them (byte-level BPE, "gpt2": the
// vocabulary, merges, control and user-defined tokens as added tokens, the pre-tokenizer split its
// "pre" type names). Other tokenizer types are refused by name.
std::map<std::string, std::string> gguf_tokenizer_files(const io::GgufReader& gguf);

struct GgufImportOptions {
  at::ScalarType dtype = at::kFloat;  // of the weights written
  bool overwrite = false;
  bool weights_only = false;  // leave the tokenizer out (one c3 cannot convert)
};

// Writes config.json, model.safetensors and the tokenizer files into `out` (complete or not at
// all). Returns the config.
Qwen2Config import_gguf(const std::filesystem::path& gguf, const std::filesystem::path& out,
                        const GgufImportOptions& options);

}  // namespace c3
