// Qwen2 decoder-only LM in LibTorch, written to read side by side with Hugging Face's
// modeling_qwen2.py. Module and parameter names equal HF's state-dict keys
// (model.layers.0.self_attn.q_proj.weight, ...), so checkpoints load by name.
#pragma once

#include <torch/torch.h>

#include <vector>

#include "c3/model/layers.h"
#include "c3/model/qwen2_config.h"

namespace c3 {

// Keys and values of every layer, preallocated (Qwen2Model::reserve) or grown by doubling, so
// decoding appends in place. Keys are stored after RoPE, as HF does. Filled by Qwen2Model::prefill
// and step, which keep every field consistent.
struct KVCache {
  std::vector<at::Tensor> keys;    // per layer [B, KV, capacity, D]
  std::vector<at::Tensor> values;  // per layer [B, KV, capacity, D]
  int64_t length = 0;              // filled positions (the same for every row of the batch)
  // Which filled positions are tokens: [B, length], 1 for a token, 0 for padding; undefined when
  // all are (the rows' prompts were of equal length).
  at::Tensor mask;

  // Fixed shapes, for a one-token step that a CUDA graph can capture: the token's keys and values go
  // to position `write_at` (int64 [1] on the device), at RoPE position `next_position` (int64 [B, 1],
  // each row's count of tokens so far), and attention covers the whole capacity where `visible`
  // (bool [B, 1, 1, capacity]) is true; step() advances all three on the device. No host value
  // changes from step to step (`length` stays). Set by fix_shapes(); undefined: the cache grows by
  // `length` and attention covers the filled positions.
  at::Tensor write_at, visible, next_position;
  bool fixed_shapes() const { return write_at.defined(); }
  // Switches to fixed shapes after a prefill: the filled positions are visible where `mask` says.
  void fix_shapes();
  // Keeps batch rows `rows` (int64, on the cache's device) and drops the others.
  void keep_rows(const at::Tensor& rows);

  int64_t capacity() const { return keys.empty() ? 0 : keys[0].size(2); }
};

class Qwen2RMSNormImpl : public torch::nn::Module {
 public:
  Qwen2RMSNormImpl(int64_t hidden_size, double eps, const at::TensorOptions& options = {});
  at::Tensor forward(const at::Tensor& x);
  at::Tensor weight;
  double eps;
};
TORCH_MODULE(Qwen2RMSNorm);

// inv_freq stays fp32 whatever the model's dtype (it is not a registered buffer, so
// module->to(bf16) leaves it alone); cos/sin are computed in fp32 and cast to the activations.
// Llama 3's scaling rescales inv_freq by wavelength, as HF's _compute_llama3_parameters.
class Qwen2RotaryEmbedding {
 public:
  Qwen2RotaryEmbedding(int64_t head_dim, double theta, const RopeScaling& scaling = {});
  // position_ids [B, T] -> (cos, sin), each [B, T, head_dim] in `dtype`.
  std::pair<at::Tensor, at::Tensor> forward(const at::Tensor& position_ids, at::ScalarType dtype);

 private:
  at::Tensor inv_freq_;
};

// Attention mask and flags shared by every layer of one forward.
struct AttentionMask {
  at::Tensor allowed;  // bool [B or 1, 1, T, S], or undefined
  bool causal = false;
};

class Qwen2AttentionImpl : public torch::nn::Module {
 public:
  Qwen2AttentionImpl(const Qwen2Config& config, const at::TensorOptions& options);
  // x [B, T, hidden]; cos/sin [B, T, D], sin with rotate_half's sign folded in (Qwen2Model::rope_tables);
  // cache: this layer's slot (index) or nullptr.
  // where: int64 [B, R] positions whose outputs are wanted (queries only there; keys and values
  // from every position), with `mask` given for those queries; undefined: every position.
  at::Tensor forward(const at::Tensor& x, const at::Tensor& cos, const at::Tensor& sin, const AttentionMask& mask,
                     KVCache* cache, int64_t layer, const at::Tensor& where = {});
  // q, k and v as one GEMM while no gradient is recorded (FusedLinear); false when they cannot be.
  bool fuse_projections();
  Linear q_proj{nullptr}, k_proj{nullptr}, v_proj{nullptr}, o_proj{nullptr};
  Qwen2RMSNorm q_norm{nullptr}, k_norm{nullptr};  // qwen3: over each head, before RoPE; else null

 private:
  // q [B, R, heads, D], k and v [B, T, kv heads, D], before RoPE.
  std::tuple<at::Tensor, at::Tensor, at::Tensor> project(const at::Tensor& x, const at::Tensor& where);
  int64_t num_heads_, num_kv_heads_, head_dim_;
  double scaling_;
  FusedLinear qkv_;
};
TORCH_MODULE(Qwen2Attention);

class Qwen2MLPImpl : public torch::nn::Module {
 public:
  Qwen2MLPImpl(const Qwen2Config& config, const at::TensorOptions& options);
  at::Tensor forward(const at::Tensor& x);  // down(silu(gate(x)) * up(x))
  bool fuse_projections();                  // gate and up as one GEMM, as Qwen2Attention's
  Linear gate_proj{nullptr}, up_proj{nullptr}, down_proj{nullptr};

 private:
  FusedLinear gate_up_;
};
TORCH_MODULE(Qwen2MLP);

class Qwen2DecoderLayerImpl : public torch::nn::Module {
 public:
  Qwen2DecoderLayerImpl(const Qwen2Config& config, int64_t layer_idx, const at::TensorOptions& options);
  // where: as Qwen2Attention's; the output is [B, R, hidden] then.
  at::Tensor forward(const at::Tensor& h, const at::Tensor& cos, const at::Tensor& sin, const AttentionMask& mask,
                     KVCache* cache, const at::Tensor& where = {});
  Qwen2Attention self_attn{nullptr};
  Qwen2MLP mlp{nullptr};
  Qwen2RMSNorm input_layernorm{nullptr}, post_attention_layernorm{nullptr};

 private:
  int64_t layer_idx_;
};
TORCH_MODULE(Qwen2DecoderLayer);

// The transformer body: embeddings, decoder layers, final RMSNorm.
class Qwen2ModelImpl : public torch::nn::Module {
 public:
  Qwen2ModelImpl(const Qwen2Config& config, const at::TensorOptions& options);

  // The three ways to run the body. Each returns the final hidden states after the final RMSNorm,
  // [B, T, hidden], or [B, R, hidden] at `output_positions`.
  //   inputs_embeds [B, T, hidden] (C3 overwrites slot rows before calling these).
  //   attention_mask [B, T] of 1 (token) / 0 (padding), HF-style, or undefined. A right-padded
  //     batch needs none: under causal attention no real token sees a padding one, so without a
  //     mask attention takes the fused causal kernels and nothing waits for the host; the outputs
  //     at padding positions are then not HF's, and must not be read. A mask is needed only where
  //     a row's tokens are not a prefix of it: a cache holding prompts of unequal length.
  //     Positions are counted from it (cumsum - 1), else 0..T-1.
  //   output_positions int64 [B, R]: positions (0..T-1 of this input) whose hidden states are wanted;
  //     the last layer then computes its queries, attention output, MLP and the final norm at those
  //     positions only (exact: no other position's output depends on them). Undefined: every position.

  // Whole sequences, no cache (training, compression).
  at::Tensor forward(const at::Tensor& inputs_embeds, const at::Tensor& attention_mask = {},
                     const at::Tensor& output_positions = {});
  // Appends T positions to `cache`: a prompt into an empty cache, or a chunk after what it holds
  // (which must not have fixed shapes). The cache keeps the mask for the steps that follow.
  at::Tensor prefill(const at::Tensor& inputs_embeds, KVCache& cache, const at::Tensor& attention_mask = {},
                     const at::Tensor& output_positions = {});
  // One token per row, inputs_embeds [B, 1, hidden], after what the cache holds -> [B, 1, hidden].
  // With fixed shapes (KVCache::fix_shapes) it reads and changes no host value (CUDA graphs).
  at::Tensor step(const at::Tensor& inputs_embeds, KVCache& cache);

  Embedding embed_tokens{nullptr};
  torch::nn::ModuleList layers;
  Qwen2RMSNorm norm{nullptr};

  // Recompute each decoder layer's activations in backward instead of keeping them (training on
  // long inputs). Has no effect without grad or with a KV cache.
  bool gradient_checkpointing = false;

  // Makes room in `cache` for `positions` positions of `batch` rows at once (decoding knows its
  // length up front: prompt + max_new_tokens), so no forward has to grow it and copy every layer.
  void reserve(KVCache& cache, int64_t batch, int64_t positions, const at::TensorOptions& options) const;

  // For inference: each layer's q/k/v and gate/up projections as one GEMM (FusedLinear), which a
  // batch-1 decoding step on a CPU feels. Returns how many groups were fused (2 per layer unless
  // LoRA or mixed dtypes keep them apart). Outputs are bit-identical either way.
  int64_t fuse_projections();

 private:
  // RoPE's (cos, sin) at these positions, with rotate_half's sign folded into sin (see apply_rope).
  std::pair<at::Tensor, at::Tensor> rope_tables(const at::Tensor& position_ids, at::ScalarType dtype);
  // Grows the cache when `needed` positions do not fit: to the next power of two (at least 64).
  void ensure_capacity(KVCache& cache, int64_t batch, int64_t needed, const at::Tensor& like) const;
  // The layers over `inputs_embeds` at positions past..past+T-1, where past is what `cache` holds (0
  // without one); `mask` [B, past + T] covers them all, or is undefined.
  at::Tensor run_layers(const at::Tensor& inputs_embeds, const at::Tensor& mask, KVCache* cache,
                        const at::Tensor& output_positions);
  // step() into a fixed-shape cache.
  at::Tensor step_fixed(const at::Tensor& inputs_embeds, KVCache& cache);
  Qwen2Config config_;
  Qwen2RotaryEmbedding rotary_emb_;
};
TORCH_MODULE(Qwen2Model);

class Qwen2ForCausalLMImpl : public torch::nn::Module {
 public:
  // Parameters are allocated with `options` (dtype, device) and left uninitialised: call
  // init_weights() or load a checkpoint (load_qwen2) before use.
  explicit Qwen2ForCausalLMImpl(const Qwen2Config& config, const at::TensorOptions& options = {});

  const Qwen2Config& config() const { return config_; }
  at::Tensor embed(const at::Tensor& input_ids);       // [B, T] -> [B, T, hidden]
  at::Tensor logits(const at::Tensor& hidden_states);  // in the model's dtype
  const at::Tensor& output_embedding() const;          // lm_head weight (tied or not)

  // input_ids [B, T] -> logits [B, T, vocab] (whole sequences, Qwen2Model::forward).
  at::Tensor forward(const at::Tensor& input_ids, const at::Tensor& attention_mask = {});
  // The body's hidden states (Qwen2Model's forward, prefill and step), for callers that take logits
  // at a few positions only.
  at::Tensor hidden_states(const at::Tensor& inputs_embeds, const at::Tensor& attention_mask = {},
                           const at::Tensor& output_positions = {}) {
    return model->forward(inputs_embeds, attention_mask, output_positions);
  }
  at::Tensor prefill(const at::Tensor& inputs_embeds, KVCache& cache, const at::Tensor& attention_mask = {},
                     const at::Tensor& output_positions = {}) {
    return model->prefill(inputs_embeds, cache, attention_mask, output_positions);
  }
  at::Tensor step(const at::Tensor& inputs_embeds, KVCache& cache) { return model->step(inputs_embeds, cache); }
  void reserve(KVCache& cache, int64_t batch, int64_t positions, const at::TensorOptions& options) const {
    model->reserve(cache, batch, positions, options);
  }
  int64_t fuse_projections() { return model->fuse_projections(); }
  // Weight-only int8 copies of every projection and of the output embedding, for decoding steps
  // on the CPU (Int8Weight; prompts keep the float weights). Returns how many weights it quantized.
  int64_t quantize_int8();

  // HF's _init_weights: normal(0, initializer_range) for linear and embedding weights, zero
  // biases, unit RMSNorm weights.
  void init_weights(uint64_t seed);

  Qwen2Model model{nullptr};
  Linear lm_head{nullptr};  // null when tie_word_embeddings

 private:
  Qwen2Config config_;
  Int8Weight output_int8_;  // quantize_int8's copy of output_embedding()
};
TORCH_MODULE(Qwen2ForCausalLM);

}  // namespace c3
