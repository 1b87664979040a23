#include "c3/train/trainer.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cmath>
#include <csignal>
#include <ctime>
#include <map>
#include <optional>

#include "c3/data/tasks.h"
#include "c3/eval/fox_metrics.h"
#include "c3/eval/instruct_eval.h"
#include "c3/infer/codec.h"
#include "c3/infer/generate.h"
#include "c3/model/c3_loss.h"
#include "c3/model/c3_prompt.h"
#include "c3/model/projector_init.h"
#include "c3/train/checkpoints.h"
#include "c3/train/schedule.h"
#include "c3/util/atomic_file.h"
#include "c3/util/dtype.h"
#include "c3/util/error.h"
#include "c3/util/stop_signals.h"
#include "gradient_reducer.h"
#include "progress.h"
#include "train_setup.h"

namespace fs = std::filesystem;

namespace c3 {
namespace {

using namespace train_setup;

std::vector<const std::vector<int32_t>*> ids_of(const std::vector<Sample>& samples, const std::vector<int64_t>& index) {
  std::vector<const std::vector<int32_t>*> out;
  for (int64_t i : index) out.push_back(&samples[i].ids);
  return out;
}

// What each task's rows are made of, over one set of samples (training or validation).
struct TaskData {
  const std::vector<Sample>* samples = nullptr;
  std::vector<ContinuationExample> continuations;
  std::vector<InstructExample> instructs;
  std::vector<int64_t> sizes() const {
    return {static_cast<int64_t>(samples->size()), static_cast<int64_t>(continuations.size()),
            static_cast<int64_t>(instructs.size())};
  }
};

// The prompt each task's rows follow: instruct rows their record's instruction.
struct TaskPrompts {
  const C3Prompt* reconstruct = nullptr;
  std::optional<C3Prompt> continuation;
  std::map<std::string, C3Prompt> instruct;  // by instruction
};

// Decoder rows for (task, example) picks: reconstruction rows take a sample as context and answer;
// continuation rows the pieces before a piece as context, that piece as the answer; instruct rows
// a record's context pieces and its answer.
std::vector<C3Example> examples_of(const std::vector<std::pair<Task, int64_t>>& picks, const TaskData& data,
                                   const TaskPrompts& prompts) {
  const std::vector<Sample>& samples = *data.samples;
  std::vector<C3Example> out;
  for (const auto& [task, index] : picks) {
    if (task == Task::reconstruct) {
      out.push_back({prompts.reconstruct, {&samples[index].ids}, &samples[index].ids});
    } else if (task == Task::continuation) {
      const ContinuationExample& e = data.continuations[index];
      C3Example row{&*prompts.continuation, {}, &samples[e.next].ids};
      for (const int64_t piece : e.context) row.context.push_back(&samples[piece].ids);
      out.push_back(std::move(row));
    } else {
      const InstructExample& e = data.instructs[index];
      C3Example row{&prompts.instruct.at(e.instruction), {}, &e.answer};
      for (const auto& piece : e.context) row.context.push_back(&piece);
      out.push_back(std::move(row));
    }
  }
  return out;
}

struct Validation {
  double continue_loss = -1;  // < 0: no continuation examples to validate on
  double instruct_loss = -1;  // < 0: no instruct records to validate on
  double loss = 0;
  double precision = 0;
  int64_t precision_samples = 0;
  double instruct_exact_match = 0, instruct_f1 = 0;  // of answers generated from latents
  int64_t instruct_samples = 0;
};

// Sums a rank adds up over its share of the validation data, then all-reduced.
struct ValidationSums {
  double loss = 0, tokens = 0, precision = 0;
  double continue_loss = 0, continue_tokens = 0;
  double instruct_loss = 0, instruct_tokens = 0, instruct_exact_match = 0, instruct_f1 = 0;
  double interrupted = 0;
  void all_reduce(Communicator& comm) {
    for (double* v : {&loss, &tokens, &precision, &continue_loss, &continue_tokens, &instruct_loss, &instruct_tokens,
                      &instruct_exact_match, &instruct_f1, &interrupted})
      *v = comm.all_reduce_sum(*v);
  }
};

// Validation's greedy decoding: train.eval_max_new_tokens, else room for the longest expected text.
GenerateOptions validation_generation(const TrainSettings& s, int64_t longest_expected) {
  GenerateOptions gen;
  gen.max_new_tokens = s.eval_max_new_tokens > 0 ? s.eval_max_new_tokens : longest_expected + 32;
  return gen;
}

// Spread over the ranks (rank r takes batches r, r + W, ...; the sums are all-reduced), so none
// waits in a collective while another validates alone. Returns nullopt on every rank when a stop
// signal reached any meanwhile: a scheduler's grace period is better spent saving.
std::optional<Validation> validate(C3Codec& codec, const std::vector<Sample>& samples, const TaskData& tasks,
                                   const TaskPrompts& prompts, const TrainSettings& s, const at::Device& device,
                                   const StopSignals& signals, Communicator& comm) {
  torch::NoGradGuard no_grad;
  const auto batch = static_cast<size_t>(s.batch_size), first = batch * static_cast<size_t>(comm.rank()),
             stride = batch * static_cast<size_t>(comm.world_size());
  auto batch_at = [&](size_t start, size_t end) {
    std::vector<int64_t> index;
    for (size_t i = start; i < std::min(end, start + batch); ++i) index.push_back(static_cast<int64_t>(i));
    return index;
  };
  ValidationSums sums;
  // Calls `f` with each batch of this rank's share of [0, count) until a stop signal comes.
  auto for_each_batch = [&](size_t count, const auto& f) {
    for (size_t start = first; start < count && sums.interrupted == 0; start += stride) {
      if ((sums.interrupted = signals.received() ? 1 : 0)) break;
      f(batch_at(start, count));
    }
  };
  for_each_batch(samples.size(), [&](const std::vector<int64_t>& index) {
    const auto out =
        c3_loss(codec.model(), make_c3_batch(codec.prompt(), ids_of(samples, index), true).to(device), s.loss_chunk);
    sums.loss += out.loss_sum.item<double>(), sums.tokens += static_cast<double>(out.tokens);
  });
  auto task_loss = [&](Task task, size_t count, double& loss, double& tokens) {
    for_each_batch(count, [&](const std::vector<int64_t>& index) {
      std::vector<std::pair<Task, int64_t>> picks;
      for (const int64_t i : index) picks.emplace_back(task, i);
      const auto out =
          c3_loss(codec.model(), make_c3_batch(examples_of(picks, tasks, prompts)).to(device), s.loss_chunk);
      loss += out.loss_sum.item<double>(), tokens += static_cast<double>(out.tokens);
    });
  };
  task_loss(Task::continuation, tasks.continuations.size(), sums.continue_loss, sums.continue_tokens);
  task_loss(Task::instruct, tasks.instructs.size(), sums.instruct_loss, sums.instruct_tokens);
  const auto precision_samples = static_cast<size_t>(std::min<int64_t>(s.eval_precision_samples, samples.size()));
  for_each_batch(precision_samples, [&](const std::vector<int64_t>& index) {
    int64_t longest = 0;
    for (const int64_t i : index) longest = std::max<int64_t>(longest, static_cast<int64_t>(samples[i].ids.size()));
    const auto out = codec.reconstruct(codec.compress(ids_of(samples, index)), validation_generation(s, longest));
    for (size_t k = 0; k < index.size(); ++k) {
      const std::string& truth = samples[index[k]].text;
      sums.precision += score_page(truth, out[k]).precision;
      spdlog::debug("validation sample {}: expected {:?} got {:?}", index[k], truth, out[k]);
    }
  });
  // Instruct answers generated from the latents, scored as `c3 eval --task instruct` scores them.
  const auto instruct_samples =
      static_cast<size_t>(std::min<int64_t>(s.eval_precision_samples, static_cast<int64_t>(tasks.instructs.size())));
  for_each_batch(instruct_samples, [&](const std::vector<int64_t>& index) {
    std::vector<std::pair<Task, int64_t>> picks;
    int64_t longest = 0;
    for (const int64_t i : index) {
      picks.emplace_back(Task::instruct, i);
      longest = std::max<int64_t>(longest, static_cast<int64_t>(tasks.instructs[i].answer.size()));
    }
    const auto ids =
        generate_answers(codec.model(), examples_of(picks, tasks, prompts), validation_generation(s, longest));
    for (size_t k = 0; k < index.size(); ++k) {
      const std::string answer = decode_reconstruction(codec.tokenizer(), ids[k]);
      const std::string truth = decode_reconstruction(codec.tokenizer(), tasks.instructs[index[k]].answer);
      sums.instruct_exact_match += squad_exact_match(answer, truth) ? 1 : 0;
      sums.instruct_f1 += squad_f1(answer, truth);
    }
  });
  if (comm.world_size() > 1) sums.all_reduce(comm);
  if (sums.interrupted > 0) return std::nullopt;
  Validation v;
  v.loss = sums.tokens > 0 ? sums.loss / sums.tokens : 0.0;
  if (sums.continue_tokens > 0) v.continue_loss = sums.continue_loss / sums.continue_tokens;
  if (sums.instruct_tokens > 0) v.instruct_loss = sums.instruct_loss / sums.instruct_tokens;
  v.precision_samples = static_cast<int64_t>(precision_samples);
  if (precision_samples > 0) v.precision = sums.precision / static_cast<double>(precision_samples);
  v.instruct_samples = static_cast<int64_t>(instruct_samples);
  if (instruct_samples > 0) {
    v.instruct_exact_match = sums.instruct_exact_match / static_cast<double>(instruct_samples);
    v.instruct_f1 = sums.instruct_f1 / static_cast<double>(instruct_samples);
  }
  return v;
}

// Everything a run holds. set_up() fills it in named steps; the loop in train() then reads
// top to bottom: one step, its bookkeeping, logging, validation, saving.
struct Run {
  Run(const TrainSettings& settings, const RunRecord& run_record, const at::Device& dev, Communicator& communicator)
      : s(settings), record(run_record), device(dev), comm(communicator), output(settings.output) {}
  const TrainSettings& s;
  const RunRecord& record;
  const at::Device device;
  Communicator& comm;
  const fs::path output;
  fs::path resume_dir;  // the newest checkpoint of `output`, when resuming
  StagedFolder staged_tokenizer;
  fs::path tokenizer_source;
  // Its files, read once: every checkpoint gets them even if the staged copy is gone (a /tmp cleaner).
  std::map<std::string, std::string> tokenizer_files;
  std::shared_ptr<const Tokenizer> tokenizer;
  at::ScalarType dtype = at::kFloat;
  C3Model model{nullptr};
  std::optional<C3Codec> codec;  // the model, tokenizer and prompt together (validation reconstructs through it)
  std::vector<Sample> train_samples, valid_samples;
  // data.tasks: a weight per Task; the continuation examples over each set of samples, and their prompt.
  std::vector<double> task_weights;
  TaskData train_tasks, valid_tasks;
  TaskPrompts prompts;
  bool mixed_tasks() const {
    return std::count_if(task_weights.begin(), task_weights.end(), [](double w) { return w > 0; }) > 1;
  }
  std::optional<AdamW> optimizer;
  bool zero2 = false;                        // gradients sharded too (ZeRO-2)
  std::unique_ptr<GradientReducer> reducer;  // ZeRO-2: gradients to their owners during backward
  LrSchedule schedule;
  std::optional<TaskSampler> sampler;
  TrainingState state;
  nlohmann::json settings;  // the resolved config, as saved with every checkpoint
  bool is_main() const { return comm.is_main(); }
};

// A run killed mid-save (SIGKILL, a lost node) leaves a hidden staging folder of the checkpoint.
void remove_half_written_checkpoints(const Run& run) {
  if (!run.is_main() || !fs::is_directory(run.output)) return;
  const int64_t removed =
      remove_stale_temporaries(run.output, [](const std::string& name) { return name.rfind("checkpoint-", 0) == 0; });
  if (removed > 0) spdlog::info("removed {} half-written checkpoint folders left by an interrupted run", removed);
}

void set_up_model(Run& run) {
  // Rank 0 checks the checkpoints (and moves damaged ones aside); every rank resumes from its choice.
  std::string resume = run.is_main() ? choose_resume_checkpoint(run.output).string() : "";
  if (run.comm.world_size() > 1) resume = run.comm.broadcast_string(resume);
  run.resume_dir = resume;
  run.tokenizer_source = prepare_tokenizer(run.s, run.resume_dir, run.staged_tokenizer);
  run.tokenizer = load_tokenizer(run.tokenizer_source);
  run.tokenizer_files = read_tokenizer_files(run.tokenizer_source);
  run.dtype = resolve_dtype(run.s.dtype, run.device);
  run.model = build_model(run.s, *run.tokenizer, run.dtype, run.device, run.resume_dir);
  run.model->set_gradient_checkpointing(run.s.gradient_checkpointing);
  // Recorded in checkpoints: compress and eval cut texts into spans no longer than those trained on.
  run.model->set_trained_lengths(run.s.max_length, run.s.sampling.max_tokens);
  const C3Config& config = run.model->config();
  const int64_t rows = std::min(config.encoder.vocab_size, config.decoder.vocab_size);
  if (run.tokenizer->vocab_size() > rows)
    fail_file(run.tokenizer->source(), "the tokenizer has " + std::to_string(run.tokenizer->vocab_size()) +
                                           " ids but the model's embedding tables have " + std::to_string(rows) +
                                           " rows");
  run.codec.emplace(run.model, run.tokenizer,
                    C3Prompt(*run.tokenizer, config.latent_tokens, run.s.prompt_template, run.s.instruction));
}

// The instruct records of `files` as examples, each refused (naming its record) when its decoder row
// would not fit data.max_length; their prompts are made once per instruction.
std::vector<InstructExample> load_instruct(Run& run, const std::vector<std::string>& files) {
  const TrainSettings& s = run.s;
  SampleOptions pieces = s.sampling;
  pieces.seed = s.data_seed;
  std::vector<InstructExample> out;
  for (const auto& file : files)
    for (auto& e : instruct_examples(read_instruct_records(file), *run.tokenizer, pieces)) {
      const C3Prompt& prompt = run.prompts.instruct
                                   .try_emplace(e.instruction, *run.tokenizer, run.model->config().latent_tokens,
                                                s.prompt_template, e.instruction)
                                   .first->second;
      const auto tokens = static_cast<int64_t>(prompt.decoder_prompt(static_cast<int64_t>(e.context.size())).size() +
                                               e.answer.size() + 1);
      if (tokens > s.max_length)
        fail_file(e.origin, "its context in " + std::to_string(e.context.size()) +
                                " pieces with its instruction and answer takes " + std::to_string(tokens) +
                                " decoder tokens, more than data.max_length " + std::to_string(s.max_length));
      out.push_back(std::move(e));
    }
  return out;
}

// data.instruct for training; data.instruct_validation, or records split off data.instruct, for
// validation (the same split on every rank and every resume: it follows data.seed).
void set_up_instruct(Run& run) {
  const TrainSettings& s = run.s;
  if (s.instruct_files.empty())
    throw UsageError("data.tasks: instruct has a weight but data.instruct names no records");
  run.train_tasks.instructs = load_instruct(run, s.instruct_files);
  if (!s.instruct_validation_files.empty()) {
    run.valid_tasks.instructs = load_instruct(run, s.instruct_validation_files);
    return;
  }
  const int64_t count = s.instruct_validation_records;
  if (count < 0) throw UsageError("data.instruct_validation_records must be >= 0");
  if (count > 0 && count >= static_cast<int64_t>(run.train_tasks.instructs.size()))
    throw UsageError("data.instruct_validation_records is " + std::to_string(count) + " but data.instruct holds only " +
                     std::to_string(run.train_tasks.instructs.size()) +
                     " records (lower it, or give data.instruct_validation)");
  run.valid_tasks.instructs = split_off(run.train_tasks.instructs, count, s.data_seed + 2);
}

// data.tasks: the examples of each task with a weight, over the training and validation samples.
void set_up_tasks(Run& run) {
  const TrainSettings& s = run.s;
  run.task_weights = task_weights(s.tasks);
  const int64_t n = run.model->config().latent_tokens;
  run.prompts.reconstruct = &run.codec->prompt();
  run.prompts.continuation.emplace(*run.tokenizer, n, s.prompt_template, s.continue_instruction);
  run.train_tasks.samples = &run.train_samples, run.valid_tasks.samples = &run.valid_samples;
  auto weighted = [&](Task t) { return run.task_weights[static_cast<size_t>(t)] > 0; };
  if (weighted(Task::continuation)) {
    const int64_t decoder_tokens =
        static_cast<int64_t>(run.prompts.continuation->decoder_prompt(s.context_spans).size()) + s.sampling.max_tokens +
        1;
    if (decoder_tokens > s.max_length)
      throw UsageError("data.tasks: a continuation of data.context_spans " + std::to_string(s.context_spans) +
                       " pieces takes up to " + std::to_string(decoder_tokens) +
                       " decoder tokens, more than data.max_length " + std::to_string(s.max_length) +
                       " (lower data.context_spans or data.max_tokens)");
    run.train_tasks.continuations = continuation_examples(run.train_samples, s.context_spans, s.data_seed);
    run.valid_tasks.continuations = continuation_examples(run.valid_samples, s.context_spans, s.data_seed + 1);
  }
  if (weighted(Task::instruct)) set_up_instruct(run);
  std::string weights;
  for (int t = 0; t < kTaskCount; ++t)
    if (run.task_weights[t] > 0)
      weights += fmt::format("{}{} {:.2f}", weights.empty() ? "" : ", ", task_names()[t], run.task_weights[t]);
  spdlog::info(
      "tasks: {}; {} continuation examples (up to {} pieces of context, {} for validation), {} instruct "
      "records ({} for validation)",
      weights, run.train_tasks.continuations.size(), s.context_spans, run.valid_tasks.continuations.size(),
      run.train_tasks.instructs.size(), run.valid_tasks.instructs.size());
}

// Every text must fit both windows with the prompt around it.
void set_up_data(Run& run) {
  const TrainSettings& s = run.s;
  const C3Prompt& prompt = run.codec->prompt();
  SampleOptions sampling = s.sampling;
  sampling.limit_tokens = s.max_length - std::max(prompt.encoder_extra_tokens(), prompt.decoder_extra_tokens());
  sampling.seed = s.data_seed;
  if (sampling.limit_tokens <= 0)
    throw UsageError("data.max_length " + std::to_string(s.max_length) + " leaves no room for text after the " +
                     std::to_string(prompt.decoder_extra_tokens()) + "-token decoder prompt");
  run.train_samples = load_samples(s.train_files, s, *run.tokenizer, sampling);
  if (run.train_samples.empty()) fail_file(joined(s.train_files), "no training samples (the files hold no text)");
  run.valid_samples = s.validation_file.empty() ? split_validation(run.train_samples, s.validation_samples, s.data_seed)
                                                : load_samples({s.validation_file}, s, *run.tokenizer, sampling);
  int64_t train_tokens = 0;
  for (const auto& sample : run.train_samples) train_tokens += static_cast<int64_t>(sample.ids.size());
  spdlog::info("data: {} training samples ({} tokens), {} validation samples", run.train_samples.size(), train_tokens,
               run.valid_samples.size());
  set_up_tasks(run);
}

// The parameters in the order the forward pass uses them (Q is the encoder's input, the projector
// joins the towers), so that ZeRO-2's first backward already fills buckets nearly as gradients
// arrive; the reducer takes the order it actually saw from the second backward on.
std::vector<std::pair<at::Tensor, int>> in_forward_order(const std::vector<std::pair<at::Tensor, int>>& owners,
                                                         C3Model& model) {
  std::vector<std::pair<at::Tensor, int>> out;
  std::vector<bool> taken(owners.size(), false);
  for (const C3Part part : {C3Part::query, C3Part::encoder, C3Part::projector, C3Part::decoder})
    for (const auto& named : model->part_parameters(part))
      for (size_t i = 0; i < owners.size(); ++i)
        if (!taken[i] && owners[i].first.is_same(named.second)) {
          out.push_back(owners[i]), taken[i] = true;
          break;
        }
  for (size_t i = 0; i < owners.size(); ++i)
    if (!taken[i]) out.push_back(owners[i]);
  return out;
}

// The slot states [count, N, encoder hidden] of `count` training pieces spread evenly over the data,
// on the CPU in float32, computed in eval mode (no LoRA dropout).
at::Tensor training_slot_states(Run& run, size_t count) {
  const bool training = run.model->is_training();
  run.model->eval();
  std::vector<at::Tensor> states;
  constexpr size_t kBatch = 16;
  for (size_t first = 0; first < count; first += kBatch) {
    std::vector<const std::vector<int32_t>*> texts;
    for (size_t i = first; i < std::min(count, first + kBatch); ++i)
      texts.push_back(&run.train_samples[i * run.train_samples.size() / count].ids);
    states.push_back(run.codec->slot_states(texts).to(at::kCPU, at::kFloat));
  }
  run.model->train(training);
  return at::cat(states);
}

// model.projector_init "whiten" (c3/model/projector_init.h): rank 0 computes the projector, every
// rank takes its weights.
void whiten_projector(Run& run) {
  C3ModelImpl& model = *run.model;
  if (run.is_main()) {
    const size_t count = std::min<size_t>(run.train_samples.size(), run.s.projector_init_spans);
    const double target_norm =
        model.decoder->model->embed_tokens->weight.detach().to(at::kFloat).norm(2, -1).mean().item<double>();
    const ProjectorWeights w = whitening_projector(training_slot_states(run, count), model.projector->weight.size(0),
                                                   target_norm, run.s.init_seed + 3);
    torch::NoGradGuard no_grad;
    model.projector->weight.copy_(w.weight);
    model.projector->bias.copy_(w.bias);
    spdlog::info(
        "projector whitened from the slot states of {} training pieces (latents at the decoder's mean "
        "embedding norm, {:.3f})",
        count, target_norm);
  }
  std::vector<at::Tensor> projector{model.projector->weight, model.projector->bias};
  run.comm.broadcast(projector);
}

void set_up_optimizer(Run& run) {
  const TrainSettings& s = run.s;
  run.optimizer.emplace(make_optimizer(run.model, s, run.comm.rank(), run.comm.world_size()));
  log_memory_estimate(s, run.model, run.codec->prompt(), run.train_samples, run.dtype);
  run.zero2 = s.zero_stage >= 2 && run.comm.world_size() > 1;
  if (run.zero2)
    // The lm_head's gradient accumulates once per recomputed loss chunk: reduced after backward.
    run.reducer = std::make_unique<GradientReducer>(in_forward_order(run.optimizer->parameter_owners(), run.model),
                                                    run.comm, kBucketBytes, s.overlap_comm ? kBucketsInFlight : 0,
                                                    std::vector<at::Tensor>{run.model->decoder->output_embedding()},
                                                    run.optimizer->gradient_sum_dtype());
  if (run.optimizer->shard_count() > 1)
    spdlog::info(
        "optimizer state{} sharded across {} ranks (ZeRO stage {}): this rank updates {} of {} parameter tensors",
        run.zero2 ? " and gradients" : "", run.optimizer->shard_count(), run.zero2 ? 2 : 1,
        run.optimizer->parameters_owned_by(run.comm.rank()).size(), run.model->parameters().size());
  LrSchedule& schedule = run.schedule;
  schedule.kind = s.schedule;
  schedule.lr = s.lr;
  const double samples_per_step = static_cast<double>(s.batch_size * s.grad_accum * run.comm.world_size());
  schedule.total_steps =
      s.steps > 0 ? s.steps
                  : static_cast<int64_t>(
                        std::ceil(s.epochs * static_cast<double>(run.train_samples.size()) / samples_per_step));
  schedule.warmup_steps =
      s.warmup_steps >= 0 ? s.warmup_steps : warmup_steps_from_ratio(s.warmup_ratio, schedule.total_steps);
  schedule.factor(0);  // validates the kind
  if (schedule.warmup_steps >= schedule.total_steps && schedule.total_steps > 0)
    spdlog::warn(
        "the warmup ({} steps) is as long as the run ({} steps): the learning rate never reaches optim.lr {} "
        "(lower optim.warmup_steps or optim.warmup_ratio)",
        schedule.warmup_steps, schedule.total_steps, s.lr);
}

// Resuming reads the optimizer and sampler state of the newest checkpoint; a new run starts every
// rank from rank 0's weights.
void resume_or_start(Run& run) {
  run.sampler.emplace(run.train_tasks.sizes(), run.task_weights, run.s.data_seed, run.comm.rank(),
                      run.comm.world_size());
  run.settings = run.record.settings;
  if (run.settings.contains("model"))
    run.settings["model"]["latent_tokens"] = run.model->config().latent_tokens;  // N as run
  run.state.config = run.settings;
  if (run.resume_dir.empty()) {
    std::vector<at::Tensor> params;
    for (auto& p : run.model->parameters()) params.push_back(p);
    run.comm.broadcast(params);
    return;
  }
  run.state = load_training_state(run.resume_dir, *run.optimizer, run.device);
  run.sampler->set_consumed(run.state.consumed);
  const auto changed = changed_keys(run.state.config, run.settings, run.record.path_keys);
  if (!changed.empty())
    spdlog::warn("resuming with config keys that differ from the checkpoint's: {}", joined(changed));
  run.state.config = run.settings;
  spdlog::info("resumed at step {} of {} (epoch {})", run.state.step, run.schedule.total_steps,
               run.state.consumed / static_cast<int64_t>(run.train_samples.size()));
  if (run.state.step >= run.schedule.total_steps)
    spdlog::info("the run is finished: nothing to train (raise train.steps or train.epochs to go on)");
}

// Created only now, so that bad input leaves no output folder behind.
void create_output(const Run& run) {
  std::error_code ec;
  fs::create_directories(run.output, ec);
  if (ec) fail_file(run.output.string(), "cannot create the output folder: " + ec.message());
  if (run.is_main()) write_file_atomically(run.output / "train_config.json", run.settings.dump(2) + "\n");
  const TrainSettings& s = run.s;
  spdlog::info(
      "training {} steps: {} samples per step ({} per micro-batch x {} accumulation x {} ranks), lr {} ({}, "
      "{} warmup steps), dtype {}, device {}",
      run.schedule.total_steps, s.batch_size * s.grad_accum * run.comm.world_size(), s.batch_size, s.grad_accum,
      run.comm.world_size(), s.lr, s.schedule, run.schedule.warmup_steps, scalar_type_name(run.dtype),
      run.device.str());
}

void set_up(Run& run) {
  remove_half_written_checkpoints(run);
  set_up_model(run);
  set_up_data(run);
  if (run.resume_dir.empty() && run.s.projector_init == "whiten") whiten_projector(run);
  set_up_optimizer(run);
  resume_or_start(run);
  create_output(run);
}

// One step's forward and backward over its micro-batches, gradients reduced across ranks.
struct StepResult {
  double loss = 0;  // mean over every supervised token of the step, all ranks
  double grad_norm = 0;
  double supervised = 0;  // supervised tokens, all ranks
  int64_t tokens = 0;     // non-padding tokens through both LLMs, this rank
  // With several tasks: each task's loss sum and supervised tokens, all ranks.
  std::array<double, kTaskCount> task_loss{}, task_tokens{};
};

// Adds each row's loss and supervised tokens to its task's sums.
void add_task_losses(const C3Batch& batch, const C3LossOutput& out, const std::vector<Task>& tasks, StepResult& r) {
  const at::Tensor loss = out.row_loss_sum.cpu().to(at::kDouble);
  const at::Tensor tokens = batch.labels.ne(kIgnoreIndex).sum(1).cpu();
  for (size_t i = 0; i < tasks.size(); ++i) {
    r.task_loss[static_cast<size_t>(tasks[i])] += loss[static_cast<int64_t>(i)].item<double>();
    r.task_tokens[static_cast<size_t>(tasks[i])] +=
        static_cast<double>(tokens[static_cast<int64_t>(i)].item<int64_t>());
  }
}

StepResult forward_backward(Run& run) {
  const TrainSettings& s = run.s;
  AdamW& optimizer = *run.optimizer;
  Communicator& comm = run.comm;
  optimizer.zero_grad();
  std::vector<C3Batch> micro;
  std::vector<std::vector<Task>> micro_tasks;
  int64_t local_supervised = 0;
  for (int64_t a = 0; a < s.grad_accum; ++a) {
    const auto picks = run.sampler->next(s.batch_size);
    micro.push_back(make_c3_batch(examples_of(picks, run.train_tasks, run.prompts)));
    micro_tasks.emplace_back();
    for (const auto& pick : picks) micro_tasks.back().push_back(pick.first);
    local_supervised += micro.back().supervised_tokens;
  }
  StepResult r;
  r.supervised = comm.all_reduce_sum(static_cast<double>(local_supervised));
  double loss_sum = 0;
  for (size_t m = 0; m < micro.size(); ++m) {
    const C3Batch& cpu_batch = micro[m];
    const C3LossOutput out = c3_loss(run.model, cpu_batch.to(run.device), s.loss_chunk);
    if (run.mixed_tasks()) add_task_losses(cpu_batch, out, micro_tasks[m], r);
    (out.loss_sum / r.supervised).backward();
    if (run.zero2) run.reducer->finish();  // this micro-batch's gradients are with their owners only
    optimizer.accumulate_grads();          // into the fp32 sums when there are any; ZeRO-2: drops what is not owned
    loss_sum += out.loss_sum.item<double>();
    r.tokens += (cpu_batch.has_context() ? cpu_batch.encoder_mask.sum().item<int64_t>() : 0) +
                cpu_batch.decoder_mask.sum().item<int64_t>();
  }
  if (run.mixed_tasks() && comm.world_size() > 1)
    for (int t = 0; t < kTaskCount; ++t)
      r.task_loss[t] = comm.all_reduce_sum(r.task_loss[t]), r.task_tokens[t] = comm.all_reduce_sum(r.task_tokens[t]);
  if (!run.zero2) {
    std::vector<at::Tensor> grads = optimizer.gradients();
    comm.all_reduce_sum(grads);
  }
  r.loss = comm.all_reduce_sum(loss_sum) / r.supervised;
  r.grad_norm = run.zero2 ? std::sqrt(comm.all_reduce_sum(optimizer.grad_norm_squared())) : optimizer.grad_norm();
  return r;
}

// Clips and applies the update, or skips it when the loss or gradient is not finite. Returns
// whether it was applied.
bool update(Run& run, const StepResult& r, double lr) {
  AdamW& optimizer = *run.optimizer;
  TrainingState& state = run.state;
  const bool finite = std::isfinite(r.loss) && std::isfinite(r.grad_norm);
  if (finite) {
    state.bad_steps_in_row = 0;
    if (run.s.clip_norm > 0 && r.grad_norm > run.s.clip_norm)
      optimizer.scale_grads(run.s.clip_norm / (r.grad_norm + 1e-6));
    optimizer.step(lr);
    // ZeRO-1: each rank updated only its own parameters; their owners hand them to the rest.
    if (optimizer.shard_count() > 1)
      for (int owner = 0; owner < optimizer.shard_count(); ++owner) {
        std::vector<at::Tensor> updated = optimizer.parameters_owned_by(owner);
        run.comm.broadcast(updated, owner);
      }
  } else {
    ++state.bad_steps_in_row, ++state.skipped_steps;
    spdlog::warn("step {}: non-finite {} ({}); update skipped ({} in a row)", state.step + 1,
                 std::isfinite(r.loss) ? "gradient" : "loss", std::isfinite(r.loss) ? r.grad_norm : r.loss,
                 state.bad_steps_in_row);
  }
  optimizer.zero_grad();
  return finite;
}

// CPU time of the whole process, all threads: what "equal CPU time" compares between runs that
// shared the machine with other work.
double process_cpu_seconds() {
  timespec t{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
  return static_cast<double>(t.tv_sec) + 1e-9 * static_cast<double>(t.tv_nsec);
}

// The step is done: the state every checkpoint saves moves on.
void count_step(Run& run, const StepResult& r, double seconds, double cpu_seconds) {
  TrainingState& state = run.state;
  ++state.step;
  state.tokens_seen += r.tokens * run.comm.world_size();
  state.optimizer_steps = run.optimizer->steps();
  state.consumed = run.sampler->consumed();
  state.elapsed_seconds += seconds;
  state.cpu_seconds += cpu_seconds;
  if (state.bad_steps_in_row >= run.s.max_bad_steps) {
    const auto saved = list_checkpoints(run.output);
    throw Error("stopping at step " + std::to_string(state.step) + ": non-finite loss or gradient in " +
                std::to_string(state.bad_steps_in_row) + " consecutive steps (lower optim.lr?); last checkpoint: " +
                (saved.empty() ? std::string("none") : saved.back().string()));
  }
}

// The status line every step, and a "train" record (means since the last one) every log_every steps.
class StepLog {
 public:
  StepLog(const Run& run, TrainProgress& progress) : run_(run), progress_(progress) {}

  // `budget_used`: the share of the time budget spent after this step (0 without one).
  void add(const StepResult& r, bool applied, double seconds, double budget_used) {
    if (applied) loss_ += r.loss * r.supervised, loss_tokens_ += r.supervised;
    for (int t = 0; applied && t < kTaskCount; ++t)
      task_loss_[t] += r.task_loss[t], task_tokens_[t] += r.task_tokens[t];
    tokens_ += r.tokens;
    step_seconds_ema_ = step_seconds_ema_ == 0 ? seconds : 0.9 * step_seconds_ema_ + 0.1 * seconds;
    if (budget_used > 0 && last_budget_used_ > 0) {
      const double step_share = budget_used - last_budget_used_;
      budget_per_step_ema_ = budget_per_step_ema_ == 0 ? step_share : 0.9 * budget_per_step_ema_ + 0.1 * step_share;
    }
    last_budget_used_ = budget_used;
  }

  // `last`: the run ends after this step (its time budget is spent), so it is recorded whatever
  // train.log_every says: metrics.jsonl always holds the final loss.
  void log(const StepResult& r, double lr, bool last) {
    const TrainingState& state = run_.state;
    const int64_t total = run_.schedule.total_steps;
    // The steps left: to train.steps, or fewer where a time budget ends the run first.
    double steps_left = static_cast<double>(total - state.step);
    if (budget_per_step_ema_ > 0)
      steps_left = std::min(steps_left, std::max(0.0, 1 - last_budget_used_) / budget_per_step_ema_);
    const double eta = step_seconds_ema_ * steps_left;
    const double seconds = std::max(1e-9, std::chrono::duration<double>(clock::now() - start_).count());
    progress_.status(fmt::format("step {}/{} | loss {:.4f} | lr {:.2e} | gnorm {:.3f} | {:.0f} tok/s | ETA {}",
                                 state.step, total, r.loss, lr, r.grad_norm, tokens_ / seconds, format_duration(eta)));
    if (state.step % run_.s.log_every != 0 && state.step != total && !last) return;
    const double tokens_per_second = static_cast<double>(tokens_) * run_.comm.world_size() / seconds;
    const double mean_loss = loss_tokens_ > 0 ? loss_ / loss_tokens_ : r.loss;
    const double epoch = static_cast<double>(state.consumed) / run_.train_samples.size();
    nlohmann::json record{{"type", "train"},
                          {"step", state.step},
                          {"epoch", epoch},
                          {"loss", mean_loss},
                          {"lr", lr},
                          {"grad_norm", r.grad_norm},
                          {"tokens_per_second", tokens_per_second},
                          {"tokens_seen", state.tokens_seen},
                          {"skipped_steps", state.skipped_steps},
                          {"elapsed_seconds", state.elapsed_seconds},
                          {"cpu_seconds", state.cpu_seconds}};
    std::string per_task;  // with several tasks: each one's mean loss ("loss_continue")
    for (int t = 0; run_.mixed_tasks() && t < kTaskCount; ++t) {
      if (run_.task_weights[t] <= 0) continue;
      const bool drawn = task_tokens_[t] > 0;  // else null: no row of this task since the last record
      record["loss_" + task_names()[t]] = drawn ? nlohmann::json(task_loss_[t] / task_tokens_[t]) : nlohmann::json();
      per_task +=
          " : " + task_names()[t] + " " + (drawn ? fmt::format("{:.4f}", task_loss_[t] / task_tokens_[t]) : "-");
    }
    progress_.record(record,
                     fmt::format("step {}/{} : epoch {:.2f} : loss {:.4f}{} : lr {:.3e} : gnorm {:.3f} : {:.0f} "
                                 "tok/s : ETA {}",
                                 state.step, total, epoch, mean_loss, per_task, lr, r.grad_norm, tokens_per_second,
                                 format_duration(eta)));
    start_ = clock::now(), loss_ = loss_tokens_ = 0, tokens_ = 0;
    task_loss_.fill(0), task_tokens_.fill(0);
  }

 private:
  using clock = std::chrono::steady_clock;
  const Run& run_;
  TrainProgress& progress_;
  clock::time_point start_ = clock::now();
  double loss_ = 0, loss_tokens_ = 0, step_seconds_ema_ = 0;
  std::array<double, kTaskCount> task_loss_{}, task_tokens_{};
  double last_budget_used_ = 0, budget_per_step_ema_ = 0;
  int64_t tokens_ = 0;
};

void save(Run& run, int64_t step) {
  const fs::path dir = checkpoint_path(run.output, step);
  save_training_checkpoint(dir, run.model, *run.optimizer, run.state, run.tokenizer_files, run.comm);
  if (run.is_main()) {
    prune_checkpoints(run.output, run.s.keep_checkpoints);
    spdlog::info("saved {}", dir.string());
  }
  run.comm.barrier();
}

// Whether rank 0's metrics already hold a validation at `step` (a resumed run), agreed by all ranks
// (only rank 0 keeps the metrics), since every rank takes part in a validation.
bool validated_at(Run& run, const TrainProgress& progress, int64_t step) {
  const bool recorded = run.is_main() && progress.recorded("validation", step);
  if (run.comm.world_size() == 1) return recorded;
  return run.comm.all_reduce_sum(recorded ? 1.0 : 0.0) > 0;
}

// Every rank validates its share; rank 0 records.
void evaluate(Run& run, TrainProgress& progress, const StopSignals& signals) {
  if (run.valid_samples.empty() || run.s.eval_every <= 0) return;
  const auto result =
      validate(*run.codec, run.valid_samples, run.valid_tasks, run.prompts, run.s, run.device, signals, run.comm);
  const int64_t step = run.state.step;
  if (!run.is_main()) return;
  if (!result) {
    spdlog::warn("validation at step {} interrupted by a stop signal", step);
    return;
  }
  nlohmann::json record{{"type", "validation"},
                        {"step", step},
                        {"validation_loss", result->loss},
                        {"validation_precision", result->precision},
                        {"precision_samples", result->precision_samples}};
  std::string tasks;
  if (result->continue_loss >= 0) {
    record["validation_loss_continue"] = result->continue_loss;
    tasks += fmt::format(" : continuation loss {:.4f}", result->continue_loss);
  }
  if (result->instruct_loss >= 0) {
    record["validation_loss_instruct"] = result->instruct_loss;
    tasks += fmt::format(" : instruct loss {:.4f}", result->instruct_loss);
  }
  if (result->instruct_samples > 0) {
    record["validation_instruct_exact_match"] = result->instruct_exact_match;
    record["validation_instruct_f1"] = result->instruct_f1;
    record["instruct_samples"] = result->instruct_samples;
    tasks += fmt::format(" : instruct exact match {:.1f}%, F1 {:.1f}% ({} records)", 100 * result->instruct_exact_match,
                         100 * result->instruct_f1, result->instruct_samples);
  }
  progress.record(
      record, fmt::format("step {} : validation loss {:.4f} : reconstruction precision {:.1f}% ({} samples){}", step,
                          result->loss, 100 * result->precision, result->precision_samples, tasks));
}

// A stop signal may reach only some ranks (scancel, a node's OOM killer): all ranks agree on
// stopping, so they save the same step together.
class StopAgreement {
 public:
  StopAgreement(const StopSignals& signals, Communicator& comm) : signals_(signals), comm_(comm) {}
  bool requested() {
    const int local = signals_.received();
    if (comm_.world_size() == 1) return (signal_ = local) != 0;
    const double any = comm_.all_reduce_sum(local != 0 ? 1.0 : 0.0);
    if (any > 0 && signal_ == 0) signal_ = local != 0 ? local : SIGTERM;
    return any > 0;
  }
  int signal() const { return signal_; }  // the one that stopped the run, 0 for none

 private:
  const StopSignals& signals_;
  Communicator& comm_;
  int signal_ = 0;
};

// The share of the time budget (train.max_minutes, train.max_cpu_minutes, whichever is further
// along; 0 without one) the training steps have taken, the same on every rank: their clocks differ
// a little, and all must stop, and set the learning rate, alike.
double time_budget_used(Run& run) {
  double used = 0;
  if (run.s.max_minutes > 0) used = run.state.elapsed_seconds / (60 * run.s.max_minutes);
  if (run.s.max_cpu_minutes > 0) used = std::max(used, run.state.cpu_seconds / (60 * run.s.max_cpu_minutes));
  if (used > 0 && run.comm.world_size() > 1) used = run.comm.all_reduce_sum(used) / run.comm.world_size();
  return used;
}

// The step the learning-rate schedule is read at. With a time limit, after the warmup (counted in
// steps), the decay runs on whichever of steps and minutes is further along, so a run that the clock
// ends has decayed to its end.
int64_t schedule_step(const LrSchedule& schedule, int64_t step, double time_used) {
  if (time_used <= 0 || step < schedule.warmup_steps) return step;
  const auto decay = static_cast<double>(schedule.total_steps - schedule.warmup_steps);
  return std::max(step, schedule.warmup_steps + static_cast<int64_t>(time_used * decay));
}

}  // namespace

int train(const TrainSettings& s, const at::Device& device, Communicator& comm, const RunRecord& record) {
  check_settings(s);
  StopSignals signals;
  Run run(s, record, device, comm);
  set_up(run);
  TrainingState& state = run.state;
  TrainProgress progress(run.is_main() ? run.output / "metrics.jsonl" : fs::path(), s.progress && run.is_main(),
                         state.step);
  if (state.step == 0 && s.eval_at_start && !validated_at(run, progress, 0))
    evaluate(run, progress, signals);  // baseline

  StepLog log(run, progress);
  StopAgreement stop(signals, comm);
  int64_t last_saved = run.resume_dir.empty() ? -1 : state.step;
  bool out_of_time = false;
  double time_used = time_budget_used(run);  // then once per step, after it
  while (state.step < run.schedule.total_steps && !stop.requested()) {
    if ((out_of_time = time_used >= 1)) break;
    const auto start = std::chrono::steady_clock::now();
    const double cpu_start = process_cpu_seconds();
    const double lr = run.schedule.at(schedule_step(run.schedule, state.step, time_used));
    const StepResult step = forward_backward(run);
    const bool applied = update(run, step, lr);
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    count_step(run, step, seconds, process_cpu_seconds() - cpu_start);
    time_used = time_budget_used(run);
    log.add(step, applied, seconds, time_used);
    log.log(step, lr, time_used >= 1);
    if (s.eval_every > 0 && state.step % s.eval_every == 0) evaluate(run, progress, signals);
    if (state.step % s.save_every == 0) save(run, state.step), last_saved = state.step;
  }
  if (state.step > 0 && last_saved != state.step) save(run, state.step);  // nothing to save before the first step
  if (const int signal = stop.signal()) {
    spdlog::warn("stopped by signal {} at step {}; resume by running the same command again", signal, state.step);
    return 128 + signal;
  }
  if (out_of_time)
    spdlog::info("the time budget (train.max_minutes {}, train.max_cpu_minutes {}) was reached at step {}",
                 s.max_minutes, s.max_cpu_minutes, state.step);
  if (s.eval_every > 0 && !validated_at(run, progress, state.step)) evaluate(run, progress, signals);  // none twice
  spdlog::info("done: {} steps, model in {}", state.step, checkpoint_path(run.output, state.step).string());
  return 0;
}

}  // namespace c3
