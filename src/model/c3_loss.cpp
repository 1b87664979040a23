#include "c3/model/c3_loss.h"

#include "c3/util/error.h"
#include "recompute.h"

namespace c3 {

C3LossOutput c3_loss(C3Model& model, const C3Batch& batch, int64_t chunk_tokens) {
  if (!batch.labels.defined()) throw Error("c3_loss needs a batch built with answers");
  const at::Tensor embeds = batch.has_context()
                                ? model->decoder_embeds(batch.decoder_ids, batch.decoder_slots,
                                                        model->compress(batch.encoder_ids, batch.encoder_slots))
                                : model->decoder->embed(batch.decoder_ids);

  // Position t predicts label t + 1, so only positions from the first supervised column - 1 on
  // need the decoder's output: its last layer runs at those positions alone (the prompt's are skipped).
  const int64_t b = batch.labels.size(0), t = batch.labels.size(1);
  const at::Tensor predicted = batch.labels.narrow(1, 1, t - 1).ne(kIgnoreIndex).any(0);  // labels 1..t-1
  if (!predicted.any().item<bool>()) throw Error("batch has no supervised tokens");
  const int64_t first = 1 + predicted.to(at::kByte).argmax().item<int64_t>();
  const at::Tensor positions =
      torch::arange(first - 1, t - 1, batch.labels.options()).unsqueeze(0).expand({b, t - first});
  // Right-padded: no attention mask; padding positions carry no label (see Qwen2Model::forward).
  const at::Tensor states = model->decoder->hidden_states(embeds, {}, positions);

  const at::Tensor targets_all = batch.labels.narrow(1, first, t - first);
  const at::Tensor supervised = targets_all.ne(kIgnoreIndex);
  const at::Tensor hidden = states.index({supervised});        // [M, H]
  const at::Tensor targets = targets_all.index({supervised});  // [M]
  const at::Tensor rows =
      torch::arange(b, batch.labels.options()).unsqueeze(1).expand_as(targets_all).index({supervised});
  C3LossOutput out;
  out.tokens = hidden.size(0);
  out.row_loss_sum = at::zeros({b}, hidden.options().dtype(at::kFloat));

  // With more supervised tokens than one chunk, each chunk's logits are recomputed in backward instead of kept;
  // a single chunk is kept (the same peak memory, one lm_head product less).
  auto& decoder = model->decoder;
  const bool chunked = chunk_tokens > 0 && out.tokens > chunk_tokens;
  const int64_t step = chunked ? chunk_tokens : out.tokens;
  out.loss_sum = at::zeros({}, hidden.options().dtype(at::kFloat));
  for (int64_t start = 0; start < out.tokens; start += step) {
    const int64_t n = std::min(step, out.tokens - start);
    const at::Tensor chunk_targets = targets.narrow(0, start, n);
    auto chunk_loss = [&decoder, chunk_targets](const at::Tensor& h) {
      return at::cross_entropy_loss(decoder->logits(h).to(at::kFloat), chunk_targets, {}, at::Reduction::None);
    };
    const at::Tensor h = hidden.narrow(0, start, n);
    const at::Tensor token_loss = chunked ? recompute(chunk_loss, h) : chunk_loss(h);
    out.loss_sum = out.loss_sum + token_loss.sum();
    out.row_loss_sum.index_add_(0, rows.narrow(0, start, n), token_loss.detach());
  }
  return out;
}

}  // namespace c3
