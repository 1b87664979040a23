#include "c3/train/trainer.h"

#include <spdlog/spdlog.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <csignal>
#include <optional>

#include "c3/infer/generate.h"
#include "c3/eval/fox_metrics.h"
#include "c3/model/c3_loss.h"
#include "c3/model/c3_prompt.h"
#include "c3/train/checkpoints.h"
#include "c3/train/progress.h"
#include "c3/train/schedule.h"
#include "c3/util/atomic_file.h"
#include "c3/util/error.h"
#include "train_setup.h"

namespace fs = std::filesystem;

namespace c3 {
namespace {

using namespace train_setup;

std::atomic<int> g_stop_signal{0};
extern "C" void on_stop_signal(int signal) { g_stop_signal.store(signal); }

// SIGINT/SIGTERM only raise a flag: the step in flight finishes, then the loop saves and exits.
class StopSignals {
 public:
  StopSignals() {
    g_stop_signal.store(0);
    struct sigaction action {};
    action.sa_handler = on_stop_signal;
    sigemptyset(&action.sa_mask);
    sigaction(SIGINT, &action, &old_int_);
    sigaction(SIGTERM, &action, &old_term_);
  }
  ~StopSignals() {
    sigaction(SIGINT, &old_int_, nullptr);
    sigaction(SIGTERM, &old_term_, nullptr);
  }
  int received() const { return g_stop_signal.load(); }

 private:
  struct sigaction old_int_ {}, old_term_ {};
};

std::vector<const std::vector<int32_t>*> ids_of(const std::vector<Sample>& samples, const std::vector<int64_t>& index) {
  std::vector<const std::vector<int32_t>*> out;
  for (int64_t i : index) out.push_back(&samples[i].ids);
  return out;
}

struct Validation {
  double loss = 0;
  double precision = 0;
  int64_t precision_samples = 0;
};

// Returns nullopt when a stop signal arrives meanwhile: a scheduler's grace period is better
// spent saving than finishing a validation.
std::optional<Validation> validate(C3Model& model, const C3Prompt& prompt, const Tokenizer& tokenizer,
                                   const std::vector<Sample>& samples, const TrainSettings& s, const at::Device& device,
                                   const StopSignals& signals) {
  torch::NoGradGuard no_grad;
  Validation v;
  double loss = 0;
  int64_t tokens = 0;
  for (size_t start = 0; start < samples.size(); start += s.batch_size) {
    if (signals.received()) return std::nullopt;
    std::vector<int64_t> index;
    for (size_t i = start; i < std::min(samples.size(), start + s.batch_size); ++i) index.push_back(i);
    const auto out = c3_loss(model, make_c3_batch(prompt, ids_of(samples, index), true).to(device), s.loss_chunk);
    loss += out.loss_sum.item<double>(), tokens += out.tokens;
  }
  v.loss = tokens ? loss / tokens : 0.0;
  v.precision_samples = std::min<int64_t>(s.eval_precision_samples, samples.size());
  for (int64_t start = 0; start < v.precision_samples; start += s.batch_size) {
    if (signals.received()) return std::nullopt;
    std::vector<int64_t> index;
    int64_t longest = 0;
    for (int64_t i = start; i < std::min(v.precision_samples, start + s.batch_size); ++i) {
      index.push_back(i);
      longest = std::max<int64_t>(longest, static_cast<int64_t>(samples[i].ids.size()));
    }
    GenerateOptions gen;
    gen.max_new_tokens = s.eval_max_new_tokens > 0 ? s.eval_max_new_tokens : longest + 32;
    const auto out = reconstruct_texts(model, prompt, tokenizer, ids_of(samples, index), gen);
    for (size_t k = 0; k < index.size(); ++k) {
      const std::string& truth = samples[index[k]].text;
      v.precision += score_page(truth, out[k]).precision;
      spdlog::debug("validation sample {}: expected {:?} got {:?}", index[k], truth, out[k]);
    }
  }
  if (v.precision_samples) v.precision /= v.precision_samples;
  return v;
}

}  // namespace

int train(const TrainSettings& s, const at::Device& device, Communicator& comm) {
  check_settings(s);
  StopSignals signals;
  const fs::path output(s.output);

  if (comm.is_main() && fs::is_directory(output)) {
    // A run killed mid-save (SIGKILL, a lost node) leaves a hidden staging folder of the checkpoint.
    const int64_t removed = remove_stale_temporaries(
        output, [](const std::string& name) { return name.rfind("checkpoint-", 0) == 0; });
    if (removed > 0) spdlog::info("removed {} half-written checkpoint folders left by an interrupted run", removed);
  }
  const auto checkpoints = list_checkpoints(output);
  const fs::path resume_dir = checkpoints.empty() ? fs::path() : checkpoints.back();
  StagedFolder staged_tokenizer;
  const fs::path tokenizer_source = prepare_tokenizer(s, resume_dir, staged_tokenizer);
  const auto tokenizer = load_tokenizer(tokenizer_source);

  const at::ScalarType dtype = s.dtype == "auto" ? (device.is_cuda() ? at::kBFloat16 : at::kFloat)
                                                 : scalar_type_from_name(s.dtype);
  C3Model model = build_model(s, *tokenizer, dtype, device, resume_dir);
  model->set_gradient_checkpointing(s.gradient_checkpointing);
  model->set_max_length(s.max_length);  // recorded in checkpoints: compress's default window
  const C3Config& config = model->config();
  if (tokenizer->vocab_size() > std::min(config.encoder.vocab_size, config.decoder.vocab_size))
    fail_file(tokenizer->source(), "the tokenizer has " + std::to_string(tokenizer->vocab_size()) +
                                       " ids but the model's embedding tables have " +
                                       std::to_string(std::min(config.encoder.vocab_size, config.decoder.vocab_size)) + " rows");
  const C3Prompt prompt(*tokenizer, config.latent_tokens, s.prompt_template, s.instruction);

  // Data: every text must fit both windows with the prompt around it.
  SampleOptions sampling = s.sampling;
  sampling.limit_tokens = s.max_length - std::max(prompt.encoder_extra_tokens(), prompt.decoder_extra_tokens());
  sampling.seed = s.data_seed;
  if (sampling.limit_tokens <= 0)
    throw UsageError("data.max_length " + std::to_string(s.max_length) + " leaves no room for text after the " +
                     std::to_string(prompt.decoder_extra_tokens()) + "-token decoder prompt");
  std::vector<Sample> train_samples = load_samples(s.train_files, s, *tokenizer, sampling);
  if (train_samples.empty()) fail_file(joined(s.train_files), "no training samples (the files hold no text)");
  std::vector<Sample> valid_samples = s.validation_file.empty()
                                          ? split_validation(train_samples, s.validation_samples, s.data_seed)
                                          : load_samples({s.validation_file}, s, *tokenizer, sampling);
  int64_t train_tokens = 0;
  for (const auto& sample : train_samples) train_tokens += static_cast<int64_t>(sample.ids.size());
  spdlog::info("data: {} training samples ({} tokens), {} validation samples", train_samples.size(), train_tokens,
               valid_samples.size());
  log_memory_estimate(s, config, prompt, train_samples, dtype);

  AdamW optimizer = make_optimizer(model, s, comm.rank(), comm.world_size());
  const bool zero2 = s.zero_stage >= 2 && comm.world_size() > 1;
  if (optimizer.shard_count() > 1)
    spdlog::info("optimizer state{} sharded across {} ranks (ZeRO stage {}): this rank updates {} of {} parameter tensors",
                 zero2 ? " and gradients" : "", optimizer.shard_count(), zero2 ? 2 : 1, optimizer.parameters_owned_by(comm.rank()).size(),
                 model->parameters().size());

  const int64_t samples_per_step = s.batch_size * s.grad_accum * comm.world_size();
  LrSchedule schedule;
  schedule.kind = s.schedule;
  schedule.lr = s.lr;
  schedule.total_steps = s.steps > 0 ? s.steps
                                     : static_cast<int64_t>(std::ceil(s.epochs * static_cast<double>(train_samples.size()) /
                                                                      static_cast<double>(samples_per_step)));
  schedule.warmup_steps = s.warmup_steps >= 0 ? s.warmup_steps : warmup_steps_from_ratio(s.warmup_ratio, schedule.total_steps);
  schedule.factor(0);  // validates the kind
  if (schedule.warmup_steps >= schedule.total_steps && schedule.total_steps > 0)
    spdlog::warn("the warmup ({} steps) is as long as the run ({} steps): the learning rate never reaches optim.lr {} "
                 "(lower optim.warmup_steps or optim.warmup_ratio)",
                 schedule.warmup_steps, schedule.total_steps, s.lr);

  Sampler sampler(static_cast<int64_t>(train_samples.size()), s.data_seed, comm.rank(), comm.world_size());
  TrainingState state;
  nlohmann::json settings = s.resolved_config;
  if (settings.contains("model")) settings["model"]["latent_tokens"] = config.latent_tokens;  // N as run, not as asked
  state.config = settings;
  if (!resume_dir.empty()) {
    state = load_training_state(resume_dir, optimizer, device);
    sampler.set_consumed(state.consumed);
    const auto changed = changed_keys(state.config, settings, s.path_keys);
    if (!changed.empty()) spdlog::warn("resuming with config keys that differ from the checkpoint's: {}", joined(changed));
    state.config = settings;
    spdlog::info("resumed at step {} of {} (epoch {})", state.step, schedule.total_steps, sampler.epoch());
    if (state.step >= schedule.total_steps)
      spdlog::info("the run is finished: nothing to train (raise train.steps or train.epochs to go on)");
  } else {
    std::vector<at::Tensor> params;
    for (auto& p : model->parameters()) params.push_back(p);
    comm.broadcast(params);
  }
  const bool main = comm.is_main();
  // Created only now, so that bad input leaves no output folder behind.
  std::error_code ec;
  fs::create_directories(output, ec);
  if (ec) fail_file(output.string(), "cannot create the output folder: " + ec.message());
  if (main) write_file_atomically(output / "train_config.json", settings.dump(2) + "\n");
  TrainProgress progress(main ? output / "metrics.jsonl" : fs::path(), s.progress && main, state.step);
  spdlog::info("training {} steps: {} samples per step ({} per micro-batch x {} accumulation x {} ranks), lr {} ({}, "
               "{} warmup steps), dtype {}, device {}",
               schedule.total_steps, samples_per_step, s.batch_size, s.grad_accum, comm.world_size(), s.lr, s.schedule,
               schedule.warmup_steps, scalar_type_name(dtype), device.str());

  auto save = [&](int64_t step) {
    const fs::path dir = checkpoint_path(output, step);
    save_training_checkpoint(dir, model, optimizer, state, tokenizer_source, comm);
    if (main) {
      prune_checkpoints(output, s.keep_checkpoints);
      spdlog::info("saved {}", dir.string());
    }
    comm.barrier();
  };
  auto evaluate = [&] {
    if (!main || valid_samples.empty() || s.eval_every <= 0) return;
    const auto result = validate(model, prompt, *tokenizer, valid_samples, s, device, signals);
    if (!result) {
      spdlog::warn("validation at step {} interrupted by a stop signal", state.step);
      return;
    }
    const Validation& v = *result;
    progress.record({{"type", "validation"}, {"step", state.step}, {"validation_loss", v.loss},
                     {"validation_precision", v.precision}, {"precision_samples", v.precision_samples}},
                    fmt::format("step {} : validation loss {:.4f} : reconstruction precision {:.1f}% ({} samples)",
                                state.step, v.loss, 100 * v.precision, v.precision_samples));
  };

  if (state.step == 0 && s.eval_at_start && !progress.recorded("validation", 0)) evaluate();  // the untrained baseline
  using clock = std::chrono::steady_clock;
  auto window_start = clock::now();
  double window_loss = 0, window_loss_tokens = 0, step_seconds_ema = 0;
  int64_t window_tokens = 0;
  int64_t last_saved = resume_dir.empty() ? -1 : state.step;
  // A stop signal may reach only some ranks (scancel, a node's OOM killer): all ranks agree on
  // stopping, so they save the same step together.
  int stop_signal = 0;
  auto stop_requested = [&] {
    const int local = signals.received();
    if (comm.world_size() == 1) return (stop_signal = local) != 0;
    const double any = comm.all_reduce_sum(local != 0 ? 1.0 : 0.0);
    if (any > 0 && stop_signal == 0) stop_signal = local != 0 ? local : SIGTERM;
    return any > 0;
  };
  while (state.step < schedule.total_steps && !stop_requested()) {
    const auto step_start = clock::now();
    optimizer.zero_grad();
    std::vector<C3Batch> micro;
    int64_t local_supervised = 0;
    for (int64_t a = 0; a < s.grad_accum; ++a) {
      micro.push_back(make_c3_batch(prompt, ids_of(train_samples, sampler.next(s.batch_size)), true));
      local_supervised += micro.back().supervised_tokens;
    }
    // Mean over every supervised token of the whole (accumulated, all-rank) batch.
    const double global_supervised = comm.all_reduce_sum(static_cast<double>(local_supervised));
    double loss_sum = 0;
    int64_t step_tokens = 0;  // non-padding tokens through both LLMs, this rank
    for (const C3Batch& cpu_batch : micro) {
      const C3Batch batch = cpu_batch.to(device);
      const C3LossOutput out = c3_loss(model, batch, s.loss_chunk);
      (out.loss_sum / global_supervised).backward();
      if (zero2) {
        // ZeRO-2: this micro-batch's gradients go to their owners; the others drop theirs.
        for (int owner = 0; owner < comm.world_size(); ++owner) {
          std::vector<at::Tensor> grads = optimizer.gradients_owned_by(owner);
          comm.reduce_sum(grads, owner);
        }
        optimizer.accumulate_grads();
      } else if (s.grad_accum > 1 && s.fp32_grad_accumulation) {
        optimizer.accumulate_grads();  // bf16 gradients summed in fp32
      }
      loss_sum += out.loss_sum.item<double>();
      step_tokens += cpu_batch.encoder_mask.sum().item<int64_t>() + cpu_batch.decoder_mask.sum().item<int64_t>();
    }
    if (!zero2) {
      std::vector<at::Tensor> grads = optimizer.gradients();
      comm.all_reduce_sum(grads);
    }
    const double loss = comm.all_reduce_sum(loss_sum) / global_supervised;
    const double grad_norm = zero2 ? std::sqrt(comm.all_reduce_sum(optimizer.grad_norm_squared())) : optimizer.grad_norm();
    const double lr = schedule.at(state.step);
    const bool finite = std::isfinite(loss) && std::isfinite(grad_norm);
    if (finite) {
      state.bad_steps_in_row = 0;
      if (s.clip_norm > 0 && grad_norm > s.clip_norm) optimizer.scale_grads(s.clip_norm / (grad_norm + 1e-6));
      optimizer.step(lr);
      // ZeRO-1: each rank updated only its own parameters; their owners hand them to the rest.
      if (optimizer.shard_count() > 1)
        for (int owner = 0; owner < optimizer.shard_count(); ++owner) {
          std::vector<at::Tensor> updated = optimizer.parameters_owned_by(owner);
          comm.broadcast(updated, owner);
        }
      window_loss += loss * global_supervised, window_loss_tokens += global_supervised;
    } else {
      ++state.bad_steps_in_row, ++state.skipped_steps;
      spdlog::warn("step {}: non-finite {} ({}); update skipped ({} in a row)", state.step + 1,
                   std::isfinite(loss) ? "gradient" : "loss", std::isfinite(loss) ? grad_norm : loss,
                   state.bad_steps_in_row);
    }
    optimizer.zero_grad();
    ++state.step;
    window_tokens += step_tokens;
    state.tokens_seen += step_tokens * comm.world_size();
    state.optimizer_steps = optimizer.steps();
    state.consumed = sampler.consumed();
    const double step_seconds = std::chrono::duration<double>(clock::now() - step_start).count();
    state.elapsed_seconds += step_seconds;
    step_seconds_ema = step_seconds_ema == 0 ? step_seconds : 0.9 * step_seconds_ema + 0.1 * step_seconds;
    if (state.bad_steps_in_row >= s.max_bad_steps) {
      const auto saved = list_checkpoints(output);
      throw Error("stopping at step " + std::to_string(state.step) + ": non-finite loss or gradient in " +
                  std::to_string(state.bad_steps_in_row) + " consecutive steps (lower optim.lr?); last checkpoint: " +
                  (saved.empty() ? std::string("none") : saved.back().string()));
    }

    const double eta = step_seconds_ema * static_cast<double>(schedule.total_steps - state.step);
    progress.status(fmt::format("step {}/{} | loss {:.4f} | lr {:.2e} | gnorm {:.3f} | {:.0f} tok/s | ETA {}", state.step,
                                schedule.total_steps, loss, lr, grad_norm,
                                window_tokens / std::max(1e-9, std::chrono::duration<double>(clock::now() - window_start).count()),
                                format_duration(eta)));
    if (state.step % s.log_every == 0 || state.step == schedule.total_steps) {
      const double seconds = std::chrono::duration<double>(clock::now() - window_start).count();
      const double tokens_per_second = static_cast<double>(window_tokens) * comm.world_size() / std::max(1e-9, seconds);
      const double mean_loss = window_loss_tokens > 0 ? window_loss / window_loss_tokens : loss;
      progress.record({{"type", "train"}, {"step", state.step}, {"epoch", static_cast<double>(state.consumed) / train_samples.size()},
                       {"loss", mean_loss}, {"lr", lr}, {"grad_norm", grad_norm}, {"tokens_per_second", tokens_per_second},
                       {"tokens_seen", state.tokens_seen}, {"skipped_steps", state.skipped_steps},
                       {"elapsed_seconds", state.elapsed_seconds}},
                      fmt::format("step {}/{} : epoch {:.2f} : loss {:.4f} : lr {:.3e} : gnorm {:.3f} : {:.0f} tok/s : ETA {}",
                                  state.step, schedule.total_steps, static_cast<double>(state.consumed) / train_samples.size(),
                                  mean_loss, lr, grad_norm, tokens_per_second, format_duration(eta)));
      window_start = clock::now(), window_loss = window_loss_tokens = 0, window_tokens = 0;
    }
    if (s.eval_every > 0 && state.step % s.eval_every == 0) evaluate();
    if (state.step % s.save_every == 0) save(state.step), last_saved = state.step;
  }
  if (state.step > 0 && last_saved != state.step) save(state.step);  // nothing to save before the first step
  if (const int signal = stop_signal) {
    spdlog::warn("stopped by signal {} at step {}; resume by running the same command again", signal, state.step);
    return 128 + signal;
  }
  if (s.eval_every > 0 && !progress.recorded("validation", state.step)) evaluate();  // none twice on a rerun
  spdlog::info("done: {} steps, model in {}", state.step, checkpoint_path(output, state.step).string());
  return 0;
}

}  // namespace c3
