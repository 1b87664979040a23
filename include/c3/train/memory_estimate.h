// Back-of-the-envelope peak memory of C3 training per device, from the architecture and the
// batch shape: an estimate (formulas below), not a measurement. Used by `c3 train` (logged at
// start) and bench_train_step (the paper configuration's table).
#pragma once

#include <cstdint>
#include <string>

#include "c3/model/c3_model.h"

namespace c3 {

struct MemoryEstimateInput {
  C3Config config;
  int64_t batch = 2;                    // micro-batch per device
  int64_t encoder_tokens = 0;           // longest encoder sequence (text + N + 2)
  int64_t decoder_tokens = 0;           // longest decoder sequence (prompt + text + 1)
  int64_t weight_bytes = 2;             // 2 for bf16 training, 4 for fp32
  bool fp32_master = true;              // fp32 master weights and moments (else moments in weight dtype)
  bool fp32_grad_accumulation = false;  // with masters: micro-batch gradients summed in fp32
  bool recompute = true;                // activation recomputation per block
  bool fused_attention = true;          // SDPA/flash (LibTorch 2.x): no [heads, T, T] scores stored
  int64_t loss_chunk = 2048;            // supervised positions per lm_head chunk
  int64_t optimizer_shards = 1;         // ranks sharing the fp32 masters and moments (ZeRO-1 and -2)
  int64_t gradient_shards = 1;          // ranks sharing the gradients (ZeRO-2)
  int64_t ranks = 1;                    // data-parallel ranks (> 1: gradient buckets in flight)
  // Parameters that train (gradients, masters and moments are theirs alone; frozen parts and the
  // weights under LoRA adapters have none); -1: all of the config's.
  int64_t trainable_parameters = -1;
  int64_t adapter_parameters = 0;  // LoRA adapters' parameters, on top of the config's
};

struct MemoryEstimate {
  double weights = 0, gradients = 0, master = 0, moments = 0, activations = 0, logits = 0;
  double total() const { return weights + gradients + master + moments + activations + logits; }
};

MemoryEstimate estimate_training_memory(const MemoryEstimateInput& in);

// The reference: DeepSpeed ZeRO-2 as the authors ran it (bf16 weights, fp32 masters and moments,
// gradient checkpointing), by what DeepSpeed's ZeRO-1/2 optimizer allocates: 2 bytes of weights per
// parameter on every GPU; divided among the GPUs, 2 of bf16 gradients, 4 of their fp32 copy at the
// step and 12 of optimizer state; two bf16 reduce buffers of hidden_size^2 elements (HF Trainer's
// "auto" bucket); activations as `in` with recomputation, and full-sequence logits as
// transformers computes them (no chunking). (The ZeRO paper's 2 + 14/N leaves out the fp32 copy
// and the buffers.)
MemoryEstimate estimate_deepspeed_zero2_memory(const MemoryEstimateInput& in, int64_t gpus);

}  // namespace c3
