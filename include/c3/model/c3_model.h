// The C3 model as the authors built it (spec section 1): an encoder LLM reads
// TEXT <img> <imgpad>xN </img> with the N slots holding the learned context query Q; its
// final-norm states at the slots, through a linear projector, overwrite the N <imgpad> slots of the
// decoder's prompt, and the decoder LLM reconstructs TEXT.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "c3/model/layers.h"
#include "c3/model/qwen2.h"
#include "c3/model/qwen2_config.h"

namespace c3 {

struct C3Config {
  Qwen2Config encoder;
  Qwen2Config decoder;
  int64_t latent_tokens = 32;  // N, "latent_token_len"
  int64_t max_length = 0;      // longest sequence it was trained on ("c3_max_length"; 0: unknown)
  // Longest text it was trained to reconstruct, the data's max_tokens ("c3_max_text_tokens"; 0:
  // unknown): the spans compress and eval cut longer texts into.
  int64_t max_text_tokens = 0;

  // config.json at the root of a C3 checkpoint: the decoder's Qwen2 keys plus model_type "C3",
  // latent_token_len and contexts_compression_llm_hidden_size.
  nlohmann::json root_config_json() const;
  int64_t parameter_count() const;
};

// The modules a training config can freeze or give their own learning rate.
enum class C3Part { encoder, query, projector, decoder };
const std::vector<C3Part>& all_c3_parts();
std::string c3_part_name(C3Part part);  // "encoder", "query", "projector", "decoder"

class C3ModelImpl : public torch::nn::Module {
 public:
  // Parameters are allocated uninitialised: call init_weights() or load a checkpoint.
  C3ModelImpl(const C3Config& config, const at::TensorOptions& options = {});

  const C3Config& config() const { return config_; }
  // Where the model runs, and the dtype the decoder computes in (latents are cast to it).
  at::Device device() const { return query.device(); }
  at::ScalarType dtype() const;

  // Encoder side. ids [B, T] right-padded (each row's tokens first, then padding), slots bool
  // [B, T] with exactly N true per row, among the row's tokens. Right padding needs no attention
  // mask (Qwen2Model::forward). Returns the projected latents [B, N, decoder hidden].
  at::Tensor compress(const at::Tensor& ids, const at::Tensor& slots);
  // What compress projects: the encoder's final-norm states at the slots [B, N, encoder hidden].
  at::Tensor slot_states(const at::Tensor& ids, const at::Tensor& slots);

  // Decoder input embeddings: the decoder's token embeddings with the N slot rows of each row
  // replaced by that row's latents. ids/slots [B, T]; latents [B, N, decoder hidden].
  at::Tensor decoder_embeds(const at::Tensor& ids, const at::Tensor& slots, const at::Tensor& latents);

  // Both LLMs as HF initialises them; Q and the projector normal(0, initializer_range), zero bias.
  void init_weights(uint64_t seed);
  void set_gradient_checkpointing(bool on);
  // For inference: both LLMs' projections fused (Qwen2Model::fuse_projections); outputs unchanged.
  int64_t fuse_projections() { return encoder->fuse_projections() + decoder->fuse_projections(); }
  // What training records in checkpoints: the window and the longest text (C3Config).
  void set_trained_lengths(int64_t max_length, int64_t max_text_tokens) {
    config_.max_length = max_length, config_.max_text_tokens = max_text_tokens;
  }

  // Parameters of one part, with the names they have inside the module.
  std::vector<std::pair<std::string, at::Tensor>> part_parameters(C3Part part);

  // SHA-256 of the architecture (both configs, N) and of Q and the projector in fp32: two models
  // that compress differently differ, and latent files name the model that made them. After
  // load_c3 it is the checkpoint's, hashed from the weights as stored, so loading in another dtype
  // (bf16 on a GPU, fp32 on a CPU) keeps it; once Q or the projector change it is recomputed.
  std::string fingerprint() const;
  void pin_fingerprint(std::string fingerprint);  // load_c3: the checkpoint's, for the weights now held

  Qwen2ForCausalLM encoder{nullptr};  // "llm1" in the checkpoint
  Qwen2ForCausalLM decoder{nullptr};
  at::Tensor query;           // [N, encoder hidden], "model.Q.weight"
  Linear projector{nullptr};  // "model.mm_projector.{weight,bias}"

 private:
  std::vector<int64_t> fingerprinted_versions() const;

  C3Config config_;
  std::string pinned_fingerprint_;
  std::vector<int64_t> pinned_versions_;  // of Q and the projector when pinned
};
TORCH_MODULE(C3Model);

// C3ModelImpl::fingerprint of these weights (any dtype or device; hashed as fp32).
std::string c3_fingerprint(const C3Config& config, const at::Tensor& query, const at::Tensor& projector_weight,
                           const at::Tensor& projector_bias);

// Where a parameter of C3ModelImpl lives in the released checkpoint layout.
struct CheckpointName {
  bool encoder;      // true: in llm1/, false: at the root
  std::string name;  // tensor name in that folder
};
CheckpointName checkpoint_name(const std::string& module_name);

// Fills Q rows [0, rows) untouched and the rest normal(0, std) from `seed`: used when a checkpoint
// is loaded with a different N (explicitly allowed).
at::Tensor resize_query(const at::Tensor& stored, int64_t rows, double std, uint64_t seed);

}  // namespace c3
