#include "c3/model/qwen2.h"

#include <cmath>

#include "c3/torch_compat.h"
#include "c3/util/error.h"
#include "recompute.h"

namespace c3 {
namespace {

// RoPE as HF applies it, x * cos + rotate_half(x) * sin, where rotate_half(x) = [-x2, x1] pairs
// dimension i with i + d/2. Folding rotate_half's sign into sin once per forward leaves a roll:
// rotate_half(x) * sin = roll(x, d/2) * [-sin1, sin2], bit for bit (a sign flip is exact), in 4
// operators per tensor instead of 7.
at::Tensor fold_rotate_sign(const at::Tensor& sin) {
  const int64_t half = sin.size(-1) / 2;
  return at::cat({-sin.narrow(-1, 0, half), sin.narrow(-1, half, half)}, -1);
}

at::Tensor apply_rope(const at::Tensor& x, const at::Tensor& cos, const at::Tensor& signed_sin) {
  return x * cos + x.roll(x.size(-1) / 2, -1) * signed_sin;
}

// x [B, T, X], positions int64 [B, R] -> [B, R, X]; x itself when positions is undefined.
at::Tensor select_positions(const at::Tensor& x, const at::Tensor& positions) {
  if (!positions.defined()) return x;
  return x.gather(1, positions.unsqueeze(-1).expand({positions.size(0), positions.size(1), x.size(-1)}));
}

// Which keys each query may attend to: key j (of `total`) is visible to a query at absolute
// position p when j <= p and, with padding, when j is a real token. A query always sees itself,
// so no row is fully masked (padding queries' outputs are ignored; this only keeps softmax finite).
//   query_pos: int64 [B or 1, Tq] absolute positions; padding_mask: [B, total] or undefined.
// Returns bool [B or 1, 1, Tq, total].
at::Tensor allowed_keys(const at::Tensor& query_pos, int64_t total, const at::Tensor& padding_mask) {
  const at::Tensor key_pos = torch::arange(total, query_pos.options()).view({1, 1, 1, total});
  const at::Tensor q = query_pos.unsqueeze(1).unsqueeze(-1);  // [B, 1, Tq, 1]
  at::Tensor allowed = key_pos <= q;
  if (padding_mask.defined()) {
    const at::Tensor key_valid = padding_mask.to(at::kBool).view({padding_mask.size(0), 1, 1, total});
    allowed = (allowed & key_valid) | (key_pos == q);
  }
  return allowed;
}

}  // namespace

// ---- KV cache
void KVCache::fix_shapes() {
  if (keys.empty() || length == 0) throw Error("KVCache::fix_shapes: reserve the cache and fill the prompt first");
  const auto device = keys[0].device();
  const auto b = keys[0].size(0);
  visible = at::zeros({b, 1, 1, capacity()}, at::TensorOptions().dtype(at::kBool).device(device));
  if (mask.defined()) {
    visible.narrow(3, 0, length).copy_(mask.to(device, at::kBool).view({-1, 1, 1, length}));
    next_position = mask.to(device, at::kLong).sum(1, /*keepdim=*/true);
  } else {
    visible.narrow(3, 0, length).fill_(true);
    next_position = at::full({b, 1}, length, at::TensorOptions().dtype(at::kLong).device(device));
  }
  write_at = at::full({1}, length, at::TensorOptions().dtype(at::kLong).device(device));
  // Attention now reads the whole capacity: unfilled slots (uninitialised memory) must be finite,
  // since a masked score still multiplies its value (0 x NaN is NaN).
  for (auto* side : {&keys, &values})
    for (auto& t : *side) t.narrow(2, length, capacity() - length).zero_();
}

void KVCache::keep_rows(const at::Tensor& rows) {
  for (auto& k : keys) k = k.index_select(0, rows);
  for (auto& v : values) v = v.index_select(0, rows);
  for (auto* t : {&mask, &visible, &next_position})
    if (t->defined()) *t = t->index_select(0, rows);
}

// ---- RMSNorm: fp32 variance, cast back to the input dtype, then multiply by the weight.
Qwen2RMSNormImpl::Qwen2RMSNormImpl(int64_t hidden_size, double eps_, const at::TensorOptions& options) : eps(eps_) {
  weight = register_parameter("weight", at::ones({hidden_size}, options));
}

at::Tensor Qwen2RMSNormImpl::forward(const at::Tensor& x) {
  const auto input_dtype = x.scalar_type();
  at::Tensor h = x.to(at::kFloat);
  const at::Tensor variance = h.pow(2).mean(-1, /*keepdim=*/true);
  h = h * at::rsqrt(variance + eps);
  return weight * h.to(input_dtype);
}

// ---- RoPE
Qwen2RotaryEmbedding::Qwen2RotaryEmbedding(int64_t head_dim, double theta, const RopeScaling& scaling) {
  // inv_freq[j] = theta^(-2j/d), computed as HF does: int64 arange -> float -> pow in fp32.
  at::Tensor exponent = torch::arange(0, head_dim, 2, torch::kInt64).to(at::kFloat) / static_cast<double>(head_dim);
  inv_freq_ = 1.0 / torch::pow(torch::scalar_tensor(theta, at::kFloat), exponent);
  if (scaling.type != "llama3") return;
  // Long wavelengths are divided by `factor`, short ones kept, the band between blended smoothly.
  const double context = static_cast<double>(scaling.original_max_position_embeddings);
  const double low_freq_wavelen = context / scaling.low_freq_factor;
  const double high_freq_wavelen = context / scaling.high_freq_factor;
  const at::Tensor wavelen = 2 * M_PI / inv_freq_;
  at::Tensor scaled = at::where(wavelen > low_freq_wavelen, inv_freq_ / scaling.factor, inv_freq_);
  const at::Tensor smooth =
      (context / wavelen - scaling.low_freq_factor) / (scaling.high_freq_factor - scaling.low_freq_factor);
  const at::Tensor smoothed = (1 - smooth) * scaled / scaling.factor + smooth * scaled;
  const at::Tensor medium = (wavelen >= high_freq_wavelen).logical_and(wavelen <= low_freq_wavelen);
  inv_freq_ = at::where(medium, smoothed, scaled);
}

std::pair<at::Tensor, at::Tensor> Qwen2RotaryEmbedding::forward(const at::Tensor& position_ids, at::ScalarType dtype) {
  if (inv_freq_.device() != position_ids.device()) inv_freq_ = inv_freq_.to(position_ids.device());
  const at::Tensor freqs = position_ids.to(at::kFloat).unsqueeze(-1) * inv_freq_;  // [B, T, D/2]
  const at::Tensor emb = at::cat({freqs, freqs}, -1);
  return {emb.cos().to(dtype), emb.sin().to(dtype)};
}

// ---- Attention
Qwen2AttentionImpl::Qwen2AttentionImpl(const Qwen2Config& c, const at::TensorOptions& o)
    : num_heads_(c.num_attention_heads),
      num_kv_heads_(c.num_key_value_heads),
      head_dim_(c.head_dim),
      scaling_(1.0 / std::sqrt(static_cast<double>(c.head_dim))) {
  q_proj = register_module("q_proj", Linear(c.hidden_size, num_heads_ * head_dim_, c.qkv_bias, o));
  k_proj = register_module("k_proj", Linear(c.hidden_size, num_kv_heads_ * head_dim_, c.qkv_bias, o));
  v_proj = register_module("v_proj", Linear(c.hidden_size, num_kv_heads_ * head_dim_, c.qkv_bias, o));
  o_proj = register_module("o_proj", Linear(num_heads_ * head_dim_, c.hidden_size, c.o_proj_bias, o));
  if (c.qk_norm) {
    q_norm = register_module("q_norm", Qwen2RMSNorm(head_dim_, c.rms_norm_eps, o));
    k_norm = register_module("k_norm", Qwen2RMSNorm(head_dim_, c.rms_norm_eps, o));
  }
}

at::Tensor Qwen2AttentionImpl::forward(const at::Tensor& x, const at::Tensor& cos, const at::Tensor& sin,
                                       const AttentionMask& mask, KVCache* cache, int64_t layer,
                                       const at::Tensor& where) {
  const int64_t b = x.size(0), t = x.size(1), r = where.defined() ? where.size(1) : t;
  auto [q, k, v] = project(x, where);
  if (q_norm) q = q_norm(q), k = k_norm(k);
  q = q.transpose(1, 2), k = k.transpose(1, 2), v = v.transpose(1, 2);

  const at::Tensor c = cos.unsqueeze(1), s = sin.unsqueeze(1);  // broadcast over heads
  const at::Tensor cq = select_positions(cos, where).unsqueeze(1), sq = select_positions(sin, where).unsqueeze(1);
  q = apply_rope(q, cq, sq);
  k = apply_rope(k, c, s);

  if (cache && cache->fixed_shapes()) {  // the whole capacity, written where the device says
    cache->keys[layer].index_copy_(2, cache->write_at, k);
    cache->values[layer].index_copy_(2, cache->write_at, v);
    k = cache->keys[layer], v = cache->values[layer];
  } else if (cache) {
    const int64_t past = cache->length;
    cache->keys[layer].narrow(2, past, t).copy_(k);
    cache->values[layer].narrow(2, past, t).copy_(v);
    k = cache->keys[layer].narrow(2, 0, past + t);
    v = cache->values[layer].narrow(2, 0, past + t);
  }
  at::Tensor out;
  if (r == 1 && num_heads_ != num_kv_heads_ && !mask.causal) {
    // One query per row (a decoding step): the G query heads that share a kv head become G query
    // rows of it (heads are grouped as HF's repeat_kv groups them), so attention needs no
    // grouped-query support. With a mask, CUDA's fused kernels lack that support and the math
    // kernel would copy K and V G times per step; this way nothing is repeated.
    const int64_t g = num_heads_ / num_kv_heads_;
    out = compat::attention(q.reshape({b, num_kv_heads_, g, head_dim_}), k, v, mask.allowed, false, scaling_)
              .reshape({b, num_heads_, 1, head_dim_});
  } else {
    out = compat::attention(q, k, v, mask.allowed, mask.causal, scaling_);
  }
  out = out.transpose(1, 2).reshape({b, r, num_heads_ * head_dim_});
  return o_proj(out);
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> Qwen2AttentionImpl::project(const at::Tensor& x,
                                                                           const at::Tensor& where) {
  const int64_t b = x.size(0), t = x.size(1);
  if (!where.defined() && qkv_.usable()) {
    const at::Tensor qkv = qkv_.forward(x);
    const int64_t nq = num_heads_ * head_dim_, nkv = num_kv_heads_ * head_dim_;
    return {qkv.narrow(-1, 0, nq).view({b, t, num_heads_, head_dim_}),
            qkv.narrow(-1, nq, nkv).view({b, t, num_kv_heads_, head_dim_}),
            qkv.narrow(-1, nq + nkv, nkv).view({b, t, num_kv_heads_, head_dim_})};
  }
  const int64_t r = where.defined() ? where.size(1) : t;
  return {q_proj(select_positions(x, where)).view({b, r, num_heads_, head_dim_}),
          k_proj(x).view({b, t, num_kv_heads_, head_dim_}), v_proj(x).view({b, t, num_kv_heads_, head_dim_})};
}

bool Qwen2AttentionImpl::fuse_projections() { return qkv_.fuse({q_proj, k_proj, v_proj}); }

// ---- MLP
Qwen2MLPImpl::Qwen2MLPImpl(const Qwen2Config& c, const at::TensorOptions& o) {
  gate_proj = register_module("gate_proj", Linear(c.hidden_size, c.intermediate_size, c.mlp_bias, o));
  up_proj = register_module("up_proj", Linear(c.hidden_size, c.intermediate_size, c.mlp_bias, o));
  down_proj = register_module("down_proj", Linear(c.intermediate_size, c.hidden_size, c.mlp_bias, o));
}

at::Tensor Qwen2MLPImpl::forward(const at::Tensor& x) {
  if (!gate_up_.usable()) return down_proj(at::silu(gate_proj(x)) * up_proj(x));
  const at::Tensor gate_up = gate_up_.forward(x);
  const int64_t n = gate_proj->weight.size(0);
  return down_proj(at::silu(gate_up.narrow(-1, 0, n)) * gate_up.narrow(-1, n, n));
}

bool Qwen2MLPImpl::fuse_projections() { return gate_up_.fuse({gate_proj, up_proj}); }

// ---- Decoder layer (pre-norm)
Qwen2DecoderLayerImpl::Qwen2DecoderLayerImpl(const Qwen2Config& c, int64_t layer_idx, const at::TensorOptions& o)
    : layer_idx_(layer_idx) {
  self_attn = register_module("self_attn", Qwen2Attention(c, o));
  mlp = register_module("mlp", Qwen2MLP(c, o));
  input_layernorm = register_module("input_layernorm", Qwen2RMSNorm(c.hidden_size, c.rms_norm_eps, o));
  post_attention_layernorm =
      register_module("post_attention_layernorm", Qwen2RMSNorm(c.hidden_size, c.rms_norm_eps, o));
}

at::Tensor Qwen2DecoderLayerImpl::forward(const at::Tensor& h, const at::Tensor& cos, const at::Tensor& sin,
                                          const AttentionMask& mask, KVCache* cache, const at::Tensor& where) {
  at::Tensor x = select_positions(h, where) + self_attn(input_layernorm(h), cos, sin, mask, cache, layer_idx_, where);
  return x + mlp(post_attention_layernorm(x));
}

// ---- Body
Qwen2ModelImpl::Qwen2ModelImpl(const Qwen2Config& c, const at::TensorOptions& o)
    : config_(c), rotary_emb_(c.head_dim, c.rope_theta, c.rope_scaling) {
  embed_tokens = register_module("embed_tokens", Embedding(c.vocab_size, c.hidden_size, o));
  layers = register_module("layers", torch::nn::ModuleList());
  for (int64_t i = 0; i < c.num_hidden_layers; ++i) layers->push_back(Qwen2DecoderLayer(c, i, o));
  norm = register_module("norm", Qwen2RMSNorm(c.hidden_size, c.rms_norm_eps, o));
}

void Qwen2ModelImpl::ensure_capacity(KVCache& cache, int64_t batch, int64_t needed, const at::Tensor& like) const {
  int64_t capacity = cache.capacity();
  if (capacity < needed) {
    capacity = std::max<int64_t>(64, capacity);
    while (capacity < needed) capacity *= 2;
  }
  reserve(cache, batch, capacity, like.options());  // checks the batch; grows only when short
}

void Qwen2ModelImpl::reserve(KVCache& cache, int64_t batch, int64_t positions, const at::TensorOptions& opts) const {
  if (!cache.keys.empty() && cache.keys[0].size(0) != batch)
    throw Error("KV cache holds batch " + std::to_string(cache.keys[0].size(0)) + ", input has batch " +
                std::to_string(batch));
  if (cache.capacity() >= positions) return;
  const std::vector<int64_t> shape{batch, config_.num_key_value_heads, positions, config_.head_dim};
  for (int64_t l = 0; l < config_.num_hidden_layers; ++l) {
    at::Tensor k = at::empty(shape, opts), v = at::empty(shape, opts);
    if (cache.length > 0) {
      k.narrow(2, 0, cache.length).copy_(cache.keys[l].narrow(2, 0, cache.length));
      v.narrow(2, 0, cache.length).copy_(cache.values[l].narrow(2, 0, cache.length));
    }
    if (cache.keys.size() <= static_cast<size_t>(l)) {
      cache.keys.push_back(k), cache.values.push_back(v);
    } else {
      cache.keys[l] = k, cache.values[l] = v;
    }
  }
}

namespace {

void check_mask(const at::Tensor& mask, int64_t b, int64_t t) {
  if (mask.defined() && (mask.dim() != 2 || mask.size(0) != b || mask.size(1) != t))
    throw Error("attention_mask must be [batch, new positions] = [" + std::to_string(b) + ", " + std::to_string(t) +
                "]");
}

}  // namespace

at::Tensor Qwen2ModelImpl::forward(const at::Tensor& inputs_embeds, const at::Tensor& attention_mask,
                                   const at::Tensor& output_positions) {
  check_mask(attention_mask, inputs_embeds.size(0), inputs_embeds.size(1));
  return run_layers(inputs_embeds, attention_mask, nullptr, output_positions);
}

at::Tensor Qwen2ModelImpl::prefill(const at::Tensor& inputs_embeds, KVCache& cache, const at::Tensor& attention_mask,
                                   const at::Tensor& output_positions) {
  const int64_t b = inputs_embeds.size(0), t = inputs_embeds.size(1);
  if (cache.fixed_shapes()) throw Error("prefill: the cache has fixed shapes (prefill before fix_shapes)");
  check_mask(attention_mask, b, t);
  at::Tensor mask;  // of everything the cache will hold
  if (cache.mask.defined() || attention_mask.defined()) {
    const auto opts = at::TensorOptions().dtype(at::kLong).device(inputs_embeds.device());
    mask = at::cat({cache.mask.defined() ? cache.mask.to(opts) : at::ones({b, cache.length}, opts),
                    attention_mask.defined() ? attention_mask.to(opts) : at::ones({b, t}, opts)},
                   1);
  }
  const at::Tensor h = run_layers(inputs_embeds, mask, &cache, output_positions);
  cache.mask = mask;
  return h;
}

at::Tensor Qwen2ModelImpl::step(const at::Tensor& inputs_embeds, KVCache& cache) {
  if (inputs_embeds.dim() != 3 || inputs_embeds.size(1) != 1) throw Error("step: one token per row ([B, 1, hidden])");
  if (cache.length == 0) throw Error("step: the cache is empty (prefill a prompt first)");
  if (cache.fixed_shapes()) return step_fixed(inputs_embeds, cache);
  if (cache.mask.defined())
    cache.mask = at::cat({cache.mask, at::ones({cache.mask.size(0), 1}, cache.mask.options())}, 1);
  return run_layers(inputs_embeds, cache.mask, &cache, {});
}

at::Tensor Qwen2ModelImpl::run_layers(const at::Tensor& inputs_embeds, const at::Tensor& attention_mask, KVCache* cache,
                                      const at::Tensor& output_positions) {
  const int64_t b = inputs_embeds.size(0), t = inputs_embeds.size(1);
  const int64_t past = cache ? cache->length : 0, total = past + t;
  const auto device = inputs_embeds.device();
  const auto idx = torch::TensorOptions().dtype(at::kLong).device(device);
  const at::Tensor position_ids = attention_mask.defined()
                                      ? (attention_mask.to(at::kLong).cumsum(-1) - 1).clamp_min(0).narrow(1, past, t)
                                      : torch::arange(past, total, idx).unsqueeze(0).expand({b, t});
  const auto [cos, sin] = rope_tables(position_ids, inputs_embeds.scalar_type());

  AttentionMask mask;
  if (attention_mask.defined() || (t > 1 && past > 0)) {
    mask.allowed = allowed_keys(torch::arange(past, total, idx).unsqueeze(0), total, attention_mask);
  } else {
    mask.causal = t > 1;  // no cache: top-left causal; a single new token sees every cached key
  }
  AttentionMask positions_mask;  // the last layer's, for queries at output_positions only
  if (output_positions.defined()) positions_mask.allowed = allowed_keys(output_positions + past, total, attention_mask);

  if (cache) ensure_capacity(*cache, b, total, inputs_embeds);
  at::Tensor h = inputs_embeds;
  const int64_t last = static_cast<int64_t>(layers->size()) - 1;
  for (int64_t l = 0; l <= last; ++l) {
    auto* block = layers[static_cast<size_t>(l)]->as<Qwen2DecoderLayer>();
    const at::Tensor where = l == last ? output_positions : at::Tensor();
    const AttentionMask& m = where.defined() ? positions_mask : mask;
    if (gradient_checkpointing && !cache) {
      h = recompute([block, cos = cos, sin = sin, m,
                     where](const at::Tensor& x) { return block->forward(x, cos, sin, m, nullptr, where); },
                    h);
    } else {
      h = block->forward(h, cos, sin, m, cache, where);
    }
  }
  if (output_positions.defined() && last < 0) h = select_positions(h, output_positions);  // a model without layers
  if (cache) cache->length = total;
  return norm(h);
}

at::Tensor Qwen2ModelImpl::step_fixed(const at::Tensor& inputs_embeds, KVCache& cache) {
  const auto [cos, sin] = rope_tables(cache.next_position, inputs_embeds.scalar_type());
  cache.visible.index_fill_(3, cache.write_at, true);
  AttentionMask mask;
  mask.allowed = cache.visible;
  at::Tensor h = inputs_embeds;
  for (const auto& layer : *layers) h = layer->as<Qwen2DecoderLayer>()->forward(h, cos, sin, mask, &cache);
  cache.write_at.add_(1);
  cache.next_position.add_(1);
  return norm(h);
}

std::pair<at::Tensor, at::Tensor> Qwen2ModelImpl::rope_tables(const at::Tensor& position_ids, at::ScalarType dtype) {
  const auto [cos, sin] = rotary_emb_.forward(position_ids, dtype);
  return {cos, fold_rotate_sign(sin)};
}

int64_t Qwen2ModelImpl::fuse_projections() {
  int64_t fused = 0;
  for (const auto& layer : *layers) {
    auto* block = layer->as<Qwen2DecoderLayer>();
    fused += block->self_attn->fuse_projections() + block->mlp->fuse_projections();
  }
  return fused;
}

// ---- Causal LM
Qwen2ForCausalLMImpl::Qwen2ForCausalLMImpl(const Qwen2Config& c, const at::TensorOptions& o) : config_(c) {
  model = register_module("model", Qwen2Model(c, o));
  if (!c.tie_word_embeddings) lm_head = register_module("lm_head", Linear(c.hidden_size, c.vocab_size, false, o));
}

at::Tensor Qwen2ForCausalLMImpl::embed(const at::Tensor& input_ids) { return model->embed_tokens(input_ids); }

const at::Tensor& Qwen2ForCausalLMImpl::output_embedding() const {
  return lm_head ? lm_head->weight : model->embed_tokens->weight;
}

at::Tensor Qwen2ForCausalLMImpl::logits(const at::Tensor& hidden_states) {
  if (!at::GradMode::is_enabled() && output_int8_.accepts(hidden_states)) return output_int8_.linear(hidden_states);
  return at::linear(hidden_states, output_embedding());
}

int64_t Qwen2ForCausalLMImpl::quantize_int8() {
  int64_t quantized = 0;
  for (const auto& item : model->named_modules("", /*include_self=*/false)) {
    auto* linear = dynamic_cast<LinearImpl*>(item.value().get());
    if (!linear || linear->lora_A || item.key().find("lora_") != std::string::npos) continue;
    linear->quantize_int8();
    ++quantized;
  }
  output_int8_ = Int8Weight::quantize(output_embedding());
  return quantized + 1;
}

at::Tensor Qwen2ForCausalLMImpl::forward(const at::Tensor& input_ids, const at::Tensor& attention_mask) {
  return logits(model->forward(embed(input_ids), attention_mask));
}

void Qwen2ForCausalLMImpl::init_weights(uint64_t seed) {
  torch::NoGradGuard no_grad;
  auto gen = at::make_generator<at::CPUGeneratorImpl>(seed);
  for (auto& item : named_parameters()) {
    at::Tensor& p = item.value();
    const std::string& name = item.key();
    at::Tensor values;
    if (name.size() >= 4 && name.compare(name.size() - 4, 4, "bias") == 0) {
      values = at::zeros(p.sizes(), at::kFloat);
    } else if (name.find("norm") != std::string::npos) {
      values = at::ones(p.sizes(), at::kFloat);
    } else {
      values = at::normal(0.0, config_.initializer_range, p.sizes(), gen);
    }
    p.copy_(values);
  }
}

}  // namespace c3
