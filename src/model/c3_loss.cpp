#include "c3/model/c3_loss.h"

#include "c3/model/recompute.h"
#include "c3/util/error.h"

namespace c3 {

C3LossOutput c3_loss(C3Model& model, const C3Batch& batch, int64_t chunk_rows) {
  if (!batch.labels.defined()) throw Error("c3_loss needs a batch built with answers");
  const at::Tensor latents = model->compress(batch.encoder_ids, batch.encoder_mask, batch.encoder_slots);
  const at::Tensor embeds = model->decoder_embeds(batch.decoder_ids, batch.decoder_slots, latents);
  C3LossOutput out;
  out.decoder_hidden = model->decoder->model->forward(embeds, batch.decoder_mask);

  // Position t predicts label t + 1.
  const int64_t t = batch.labels.size(1);
  const at::Tensor targets_all = batch.labels.narrow(1, 1, t - 1);
  const at::Tensor supervised = targets_all.ne(kIgnoreIndex);
  const at::Tensor hidden = out.decoder_hidden.narrow(1, 0, t - 1).index({supervised});  // [M, H]
  const at::Tensor targets = targets_all.index({supervised});                           // [M]
  out.tokens = hidden.size(0);
  if (out.tokens == 0) throw Error("batch has no supervised tokens");

  auto& decoder = model->decoder;
  out.loss_sum = at::zeros({}, hidden.options().dtype(at::kFloat));
  const int64_t step = chunk_rows > 0 ? chunk_rows : out.tokens;
  for (int64_t start = 0; start < out.tokens; start += step) {
    const int64_t rows = std::min(step, out.tokens - start);
    const at::Tensor chunk_targets = targets.narrow(0, start, rows);
    auto chunk_loss = [&decoder, chunk_targets](const at::Tensor& h) {
      return at::cross_entropy_loss(decoder->logits(h).to(at::kFloat), chunk_targets, {}, at::Reduction::Sum);
    };
    const at::Tensor h = hidden.narrow(0, start, rows);
    out.loss_sum = out.loss_sum + (chunk_rows > 0 ? recompute(chunk_loss, h) : chunk_loss(h));
  }
  return out;
}

}  // namespace c3
