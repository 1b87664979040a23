#include "c3/train/memory_estimate.h"

#include "c3/train/communicator.h"

namespace c3 {
namespace {

// Bytes one transformer block keeps for backward, per token: the tensors autograd saves in our
// Qwen2 block (two RMSNorm inputs and outputs, q/k/v, attention output, o_proj output, gate, up,
// silu(gate), their product, down output) at the activation width; plus, with unfused attention,
// the fp32 softmax and its activation-dtype copy for every head and key.
double block_bytes_per_token(const Qwen2Config& c, int64_t act_bytes, int64_t keys, bool fused) {
  const double kv = 2.0 * c.num_key_value_heads * c.head_dim;
  double elements = 8.0 * c.hidden_size + kv + 4.0 * c.intermediate_size;
  double bytes = elements * act_bytes;
  if (!fused) bytes += static_cast<double>(c.num_attention_heads) * keys * (4 + act_bytes);
  return bytes;
}

double stack_bytes(const Qwen2Config& c, int64_t tokens_per_row, int64_t batch, int64_t act_bytes, bool recompute,
                   bool fused) {
  const double tokens = static_cast<double>(batch * tokens_per_row);
  const double block = block_bytes_per_token(c, act_bytes, tokens_per_row, fused) * tokens;
  if (!recompute) return block * c.num_hidden_layers;
  // Only each block's input is kept; one block at a time is rebuilt in backward.
  return static_cast<double>(c.hidden_size) * act_bytes * tokens * c.num_hidden_layers + block;
}

}  // namespace

MemoryEstimate estimate_training_memory(const MemoryEstimateInput& in) {
  const double all = static_cast<double>(in.config.parameter_count() + in.adapter_parameters);
  const double params = in.trainable_parameters >= 0 ? static_cast<double>(in.trainable_parameters) : all;
  const double shards = static_cast<double>(std::max<int64_t>(1, in.optimizer_shards));
  const double gradient_shards = static_cast<double>(std::max<int64_t>(1, in.gradient_shards));
  MemoryEstimate m;
  m.weights = all * in.weight_bytes;
  const bool masters = in.fp32_master && in.weight_bytes != 4;
  // ZeRO-2 keeps a rank's own gradients, plus the buckets in flight and filling (one per owner,
  // GradientReducer); with fp32 sums it sends and receives them in fp32, as stages 0 and 1 sum them.
  // Otherwise one micro-batch's gradients are whole, plus the all-reduce's buckets in flight when
  // there are several ranks. Plus the fp32 sums, sharded with ZeRO-2.
  const bool fp32_sums = masters && in.fp32_grad_accumulation;
  const double bucket = static_cast<double>(kBucketBytes), in_flight = static_cast<double>(kBucketsInFlight);
  const double sent_bytes = fp32_sums ? 4.0 : in.weight_bytes;
  const double held = gradient_shards > 1
                          ? params * sent_bytes / gradient_shards + in_flight * bucket * sent_bytes / in.weight_bytes +
                                gradient_shards * bucket
                          : params * in.weight_bytes + (in.ranks > 1 ? in_flight * bucket : 0.0);
  m.gradients = held + (fp32_sums ? params * 4 / gradient_shards : 0.0);
  m.master = masters ? params * 4 / shards : 0.0;
  m.moments = params * 2 * (masters ? 4 : in.weight_bytes) / shards;
  // The encoder's activations are released only after the decoder's backward reaches them, so
  // both stacks are alive at the peak.
  m.activations =
      stack_bytes(in.config.encoder, in.encoder_tokens, in.batch, in.weight_bytes, in.recompute, in.fused_attention) +
      stack_bytes(in.config.decoder, in.decoder_tokens, in.batch, in.weight_bytes, in.recompute, in.fused_attention);
  // One chunk of logits: activation dtype, its fp32 copy, and the fp32 gradient of that copy.
  const double rows = static_cast<double>(in.loss_chunk > 0 ? std::min(in.loss_chunk, in.batch * in.decoder_tokens)
                                                            : in.batch * in.decoder_tokens);
  m.logits = rows * static_cast<double>(in.config.decoder.vocab_size) * (in.weight_bytes + 4 + 4);
  return m;
}

MemoryEstimate estimate_deepspeed_zero2_memory(const MemoryEstimateInput& in, int64_t gpus) {
  MemoryEstimateInput reference = in;
  reference.weight_bytes = 2;
  reference.recompute = true;
  reference.loss_chunk = 0;
  MemoryEstimate m = estimate_training_memory(reference);
  const double params = static_cast<double>(in.config.parameter_count());
  const double n = static_cast<double>(std::max<int64_t>(1, gpus));
  m.weights = 2 * params;
  // DeepSpeedZeroOptimizer (stage_1_and_2.py) in bf16 with overlap_comm and contiguous_gradients:
  // the partition's gradients in bf16, their fp32 copy made for the optimizer step (alive with the
  // moments), and two reduce buffers ("IPG") of reduce_bucket_size bf16 elements, which HF
  // Trainer's "auto" sets to hidden_size^2.
  const auto hidden = static_cast<double>(in.config.decoder.hidden_size);
  m.gradients = 2 * params / n + 4 * params / n + 2 * hidden * hidden * 2;
  m.master = 4 * params / n;
  m.moments = 8 * params / n;
  return m;
}

}  // namespace c3
