// A data-driven start for the projector (train's model.projector_init "whiten"). A pretrained
// encoder's final-norm states at the N slots are mostly one constant vector per slot: measured on
// the SmolLM2 C3 (8 encoder layers, N = 16, 5,738 prose spans), 94% of their energy is the slot's
// mean and 6% varies with the text, and the authors' normal(0, 0.02) projector hands the decoder
// latents 5.4x the norm of its token embeddings. Here the projector instead removes each slot's
// mean, whitens what varies with the text, and scales the latents to the decoder's embedding norm.
#pragma once

#include <torch/torch.h>

#include <cstdint>

namespace c3 {

struct ProjectorWeights {
  at::Tensor weight;  // [out, in]
  at::Tensor bias;    // [out]
};

// states [M, N, in]: the slot states of M spans. The result maps them to latents y = W x + b with
//  - the within-slot covariance whitened (ZCA with `shrinkage` x the mean eigenvalue added to
//    every eigenvalue, so directions with little variance are not blown up),
//  - then the whitened slot means' directions projected out: every slot's mean over the M spans
//    is exactly 0, and (without shrinkage) the covariance is the identity on the rest,
//  - mean latent norm `target_norm`.
// When out != in, a semi-orthogonal map drawn from `seed` takes the whitened states to out dims.
// Computed in float64 on the CPU; the weights come back as float32.
ProjectorWeights whitening_projector(const at::Tensor& states, int64_t out_features, double target_norm, uint64_t seed,
                                     double shrinkage = 0.1);

}  // namespace c3
