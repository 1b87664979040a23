#include "c3/data/tasks.h"

#include <algorithm>
#include <cmath>
#include <random>

#include "c3/util/error.h"

namespace c3 {

const std::vector<std::string>& task_names() {
  static const std::vector<std::string> names{"reconstruct", "continue", "instruct"};
  return names;
}

const std::string& task_name(Task task) { return task_names()[static_cast<size_t>(task)]; }

std::vector<double> task_weights(const std::map<std::string, double>& tasks) {
  std::vector<double> weights(kTaskCount, 0.0);
  double total = 0;
  for (const auto& [name, weight] : tasks) {
    const auto& names = task_names();
    const auto it = std::find(names.begin(), names.end(), name);
    if (it == names.end())
      throw UsageError("data.tasks: unknown task '" + name + "' (known: reconstruct, continue, instruct)");
    if (!std::isfinite(weight) || weight < 0)
      throw UsageError("data.tasks: the weight of " + name + " must be a number >= 0");
    weights[static_cast<size_t>(it - names.begin())] = weight, total += weight;
  }
  if (total <= 0) throw UsageError("data.tasks: no task has a weight above 0");
  for (double& w : weights) w /= total;
  return weights;
}

std::vector<ContinuationExample> continuation_examples(const std::vector<Sample>& samples, int64_t max_context,
                                                       uint64_t seed) {
  if (max_context < 1) throw UsageError("data.context_spans must be at least 1");
  std::mt19937_64 rng(seed ^ 0xc0417e7ull);
  std::vector<ContinuationExample> out;
  int64_t run = 0;  // consecutive pieces of one document ending at i - 1
  for (size_t i = 0; i < samples.size(); ++i) {
    const bool follows = i > 0 && samples[i].document >= 0 && samples[i].document == samples[i - 1].document &&
                         samples[i].piece == samples[i - 1].piece + 1;
    run = follows ? run + 1 : 0;
    if (run == 0) continue;
    const int64_t available = std::min(run, max_context);
    const int64_t k = 1 + static_cast<int64_t>(rng() % static_cast<uint64_t>(available));
    ContinuationExample e;
    for (int64_t j = static_cast<int64_t>(i) - k; j < static_cast<int64_t>(i); ++j) e.context.push_back(j);
    e.next = static_cast<int64_t>(i);
    out.push_back(std::move(e));
  }
  return out;
}

std::vector<InstructExample> instruct_examples(const std::vector<InstructRecord>& records, const Tokenizer& tokenizer,
                                               const SampleOptions& options) {
  std::vector<InstructExample> out;
  for (const auto& r : records) {
    InstructExample e{{}, r.instruction, tokenizer.encode_text(r.answer), r.origin};
    if (e.answer.empty()) fail_file(r.origin, "the answer is empty");
    for (auto& piece : make_samples({{r.context, r.origin}}, tokenizer, options))
      e.context.push_back(std::move(piece.ids));
    if (e.context.empty()) fail_file(r.origin, "the context is empty");
    out.push_back(std::move(e));
  }
  return out;
}

TaskSampler::TaskSampler(std::vector<int64_t> sizes, std::vector<double> weights, uint64_t seed, int64_t rank,
                         int64_t world)
    : seed_(seed), rank_(rank), world_(world), drawn_(sizes.size(), 0) {
  if (sizes.size() != weights.size() || sizes.empty()) throw Error("TaskSampler: one size and weight per task");
  double sum = 0;
  int positive = 0;
  for (size_t t = 0; t < sizes.size(); ++t) {
    if (weights[t] > 0 && sizes[t] <= 0)
      throw UsageError("data.tasks: " + task_name(static_cast<Task>(t)) + " has weight " + std::to_string(weights[t]) +
                       " but the training data makes no " + task_name(static_cast<Task>(t)) + " example" +
                       (t == static_cast<size_t>(Task::continuation)
                            ? " (no document is long enough to cut into two pieces: lower data.max_tokens)"
                        : t == static_cast<size_t>(Task::instruct) ? " (give data.instruct records)"
                                                                   : ""));
    // Task 0 keeps the data seed, so a run of reconstruction alone samples as it always has.
    streams_.emplace_back(std::max<int64_t>(sizes[t], 1), seed + 0x51ed270b27ull * t, 0, 1);
    cumulative_.push_back(sum += weights[t]);
    if (weights[t] > 0) last_ = static_cast<int>(t), ++positive;
  }
  if (positive == 1) only_ = last_;
  weights_ = std::move(weights);
}

Task TaskSampler::task_at(int64_t position) const {
  if (only_ >= 0) return static_cast<Task>(only_);
  // splitmix64 of (seed, position): a uniform draw in [0, 1) per position, the same on every platform.
  uint64_t z = seed_ + 0x9e3779b97f4a7c15ull * (static_cast<uint64_t>(position) + 1);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  z ^= z >> 31;
  const double u = static_cast<double>(z >> 11) * 0x1.0p-53 * cumulative_.back();
  for (size_t t = 0; t < cumulative_.size(); ++t)
    if (u < cumulative_[t] && weights_[t] > 0) return static_cast<Task>(t);
  return static_cast<Task>(last_);
}

std::vector<std::pair<Task, int64_t>> TaskSampler::next(int64_t batch) {
  std::vector<std::pair<Task, int64_t>> out;
  const int64_t mine = consumed_ + rank_ * batch;
  for (int64_t p = consumed_; p < consumed_ + world_ * batch; ++p) {
    const auto t = static_cast<size_t>(task_at(p));
    if (p >= mine && p < mine + batch) out.emplace_back(static_cast<Task>(t), streams_[t].index_at(drawn_[t]));
    ++drawn_[t];
  }
  consumed_ += world_ * batch;
  return out;
}

void TaskSampler::set_consumed(int64_t consumed) {
  std::fill(drawn_.begin(), drawn_.end(), 0);
  for (int64_t p = 0; p < consumed; ++p) ++drawn_[static_cast<size_t>(task_at(p))];
  consumed_ = consumed;
}

}  // namespace c3
