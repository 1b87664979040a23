// C3's training loss (spec section 1.6): decoder logits in fp32, shifted by one, cross-entropy over
// the supervised tokens only. Logits are computed only at supervised positions, in chunks, each
// recomputed in backward, so a 151k-entry vocabulary never needs [tokens x vocab] fp32 at once.
#pragma once

#include <torch/torch.h>

#include "c3/model/c3_model.h"
#include "c3/model/c3_prompt.h"

namespace c3 {

struct C3LossOutput {
  at::Tensor loss_sum;      // fp32 scalar: sum of the per-token cross-entropies
  int64_t tokens = 0;       // supervised tokens it sums over
  at::Tensor row_loss_sum;  // fp32 [B], detached: each batch row's share of loss_sum (per-task logging)
};

// chunk_tokens: supervised positions per lm_head chunk, each recomputed in backward when there is
// more than one (0: all at once).
C3LossOutput c3_loss(C3Model& model, const C3Batch& batch, int64_t chunk_tokens = 2048);

}  // namespace c3
