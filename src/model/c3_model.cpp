#include "c3/model/c3_model.h"

#include "c3/util/error.h"
#include "c3/util/sha256.h"

namespace c3 {

nlohmann::json C3Config::root_config_json() const {
  nlohmann::json root = decoder.to_json();
  root["model_type"] = "C3";
  // The decoder's family, where it is not the authors' Qwen2 (Qwen2Config reads it back).
  if (decoder.model_type != "qwen2") root["c3_decoder_model_type"] = decoder.model_type;
  // "architectures" stays the decoder's class (as the released checkpoint's config.json has it):
  // the authors' loader names its own class, and the fingerprints of existing models stay.
  root["latent_token_len"] = latent_tokens;
  root["contexts_compression_llm_hidden_size"] = encoder.hidden_size;
  if (max_length > 0) root["c3_max_length"] = max_length;
  if (max_text_tokens > 0) root["c3_max_text_tokens"] = max_text_tokens;
  return root;
}

int64_t C3Config::parameter_count() const {
  return encoder.parameter_count() + decoder.parameter_count() + latent_tokens * encoder.hidden_size +
         encoder.hidden_size * decoder.hidden_size + decoder.hidden_size;
}

const std::vector<C3Part>& all_c3_parts() {
  static const std::vector<C3Part> parts{C3Part::encoder, C3Part::query, C3Part::projector, C3Part::decoder};
  return parts;
}

std::string c3_part_name(C3Part part) {
  switch (part) {
    case C3Part::encoder:
      return "encoder";
    case C3Part::query:
      return "query";
    case C3Part::projector:
      return "projector";
    case C3Part::decoder:
      return "decoder";
  }
  return "?";
}

C3ModelImpl::C3ModelImpl(const C3Config& c, const at::TensorOptions& o) : config_(c) {
  if (c.latent_tokens <= 0) throw UsageError("latent_tokens must be positive, got " + std::to_string(c.latent_tokens));
  encoder = register_module("llm1", Qwen2ForCausalLM(c.encoder, o));
  decoder = register_module("decoder", Qwen2ForCausalLM(c.decoder, o));
  query = register_parameter("Q", at::empty({c.latent_tokens, c.encoder.hidden_size}, o));
  projector = register_module("mm_projector", Linear(c.encoder.hidden_size, c.decoder.hidden_size, true, o));
}

at::ScalarType C3ModelImpl::dtype() const { return decoder->output_embedding().scalar_type(); }

at::Tensor C3ModelImpl::compress(const at::Tensor& ids, const at::Tensor& slots) {
  return projector(slot_states(ids, slots));
}

at::Tensor C3ModelImpl::slot_states(const at::Tensor& ids, const at::Tensor& slots) {
  const int64_t b = ids.size(0), n = config_.latent_tokens;
  at::Tensor embeds = encoder->embed(ids);
  // masked_scatter fills the slots in row-major order, so slot i of every row gets Q row i.
  embeds = embeds.masked_scatter(slots.unsqueeze(-1), query.unsqueeze(0).expand({b, n, query.size(1)}));
  // Only the slots' final states are needed: the encoder's last layer runs at those rows alone.
  const at::Tensor positions = slots.nonzero().select(1, 1).view({b, n});  // row-major: slot order
  // Right-padded rows and slots inside each row's text: no attention mask (see Qwen2Model::forward).
  return encoder->hidden_states(embeds, {}, positions);  // after the final norm
}

at::Tensor C3ModelImpl::decoder_embeds(const at::Tensor& ids, const at::Tensor& slots, const at::Tensor& latents) {
  at::Tensor embeds = decoder->embed(ids);
  return embeds.masked_scatter(slots.unsqueeze(-1), latents.to(embeds.scalar_type()));
}

void C3ModelImpl::init_weights(uint64_t seed) {
  encoder->init_weights(seed);
  decoder->init_weights(seed + 1);
  torch::NoGradGuard no_grad;
  auto gen = at::make_generator<at::CPUGeneratorImpl>(seed + 2);
  query.copy_(at::normal(0.0, config_.encoder.initializer_range, query.sizes(), gen));
  projector->weight.copy_(at::normal(0.0, config_.decoder.initializer_range, projector->weight.sizes(), gen));
  projector->bias.zero_();
}

void C3ModelImpl::set_gradient_checkpointing(bool on) {
  encoder->model->gradient_checkpointing = on;
  decoder->model->gradient_checkpointing = on;
}

std::vector<std::pair<std::string, at::Tensor>> C3ModelImpl::part_parameters(C3Part part) {
  std::vector<std::pair<std::string, at::Tensor>> out;
  for (const auto& item : named_parameters(/*recurse=*/true)) {
    const std::string& name = item.key();
    C3Part owner = name.rfind("llm1.", 0) == 0      ? C3Part::encoder
                   : name.rfind("decoder.", 0) == 0 ? C3Part::decoder
                   : name == "Q"                    ? C3Part::query
                                                    : C3Part::projector;
    if (owner == part) out.emplace_back(name, item.value());
  }
  return out;
}

namespace {

void hash_tensor(Sha256& h, const at::Tensor& t) {
  const at::Tensor values = t.detach().to(at::kCPU, at::kFloat).contiguous();
  h.update(values.data_ptr(), static_cast<size_t>(values.numel()) * sizeof(float));
}

}  // namespace

std::string c3_fingerprint(const C3Config& config, const at::Tensor& query, const at::Tensor& projector_weight,
                           const at::Tensor& projector_bias) {
  Sha256 h;
  // The longest text trained on says how to cut texts, not how latents are made: latents from before
  // checkpoints recorded it stay readable.
  nlohmann::json root = config.root_config_json();
  root.erase("c3_max_text_tokens");
  h.update(root.dump());
  h.update(config.encoder.to_json().dump());
  hash_tensor(h, query);
  hash_tensor(h, projector_weight);
  hash_tensor(h, projector_bias);
  return h.hex();
}

std::vector<int64_t> C3ModelImpl::fingerprinted_versions() const {
  return {query._version(), projector->weight._version(), projector->bias._version()};
}

std::string C3ModelImpl::fingerprint() const {
  if (!pinned_fingerprint_.empty() && pinned_versions_ == fingerprinted_versions()) return pinned_fingerprint_;
  return c3_fingerprint(config_, query, projector->weight, projector->bias);
}

void C3ModelImpl::pin_fingerprint(std::string fingerprint) {
  pinned_fingerprint_ = std::move(fingerprint);
  pinned_versions_ = fingerprinted_versions();
}

CheckpointName checkpoint_name(const std::string& module_name) {
  if (module_name.rfind("llm1.", 0) == 0) return {true, module_name.substr(5)};
  if (module_name.rfind("decoder.", 0) == 0) return {false, module_name.substr(8)};
  if (module_name == "Q") return {false, "model.Q.weight"};
  if (module_name.rfind("mm_projector.", 0) == 0) return {false, "model." + module_name};
  throw Error("no checkpoint name for C3 parameter '" + module_name + "'");
}

at::Tensor resize_query(const at::Tensor& stored, int64_t rows, double std, uint64_t seed) {
  auto gen = at::make_generator<at::CPUGeneratorImpl>(seed);
  at::Tensor out = at::normal(0.0, std, {rows, stored.size(1)}, gen).to(stored.options());
  const int64_t keep = std::min(rows, stored.size(0));
  out.narrow(0, 0, keep).copy_(stored.narrow(0, 0, keep));
  return out;
}

}  // namespace c3
