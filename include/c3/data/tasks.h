// What a training row asks of the decoder given its context's latents, and the seeded mixture of
// tasks a run trains on (data.tasks):
//   reconstruct  the context is one piece; the answer is that piece (C3 as the paper trains it);
//   continue     the context is up to data.context_spans consecutive pieces of a document; the
//                answer is the piece after them, after the instruction "Continue the text: ";
//   instruct     a record's context (its pieces), its own instruction and answer (data.instruct).
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "c3/data/dataset.h"

namespace c3 {

enum class Task { reconstruct, continuation, instruct };
inline constexpr int kTaskCount = 3;
const std::vector<std::string>& task_names();  // by Task: "reconstruct", "continue", "instruct"
const std::string& task_name(Task task);

// data.tasks ({"reconstruct": 0.7, "continue": 0.3}) as one weight per Task, summing to 1. Unknown
// names, negative or non-finite weights and an all-zero mix are UsageErrors naming the key.
std::vector<double> task_weights(const std::map<std::string, double>& tasks);

// The piece `next` and the consecutive pieces of its document before it, in order.
struct ContinuationExample {
  std::vector<int64_t> context;  // sample indices, oldest first
  int64_t next = 0;
};

// One example per piece that follows another of its document (Sample::document/piece; pieces
// moved out to validation break the chain there), with 1..max_context pieces of context: the
// count is a seeded draw, so that every context length up to max_context is trained.
std::vector<ContinuationExample> continuation_examples(const std::vector<Sample>& samples, int64_t max_context,
                                                       uint64_t seed);

// An instruct record cut for training: its context in pieces of the training range (each one block
// of latents), its instruction, and the answer's ids.
struct InstructExample {
  std::vector<std::vector<int32_t>> context;
  std::string instruction;
  std::vector<int32_t> answer;
  std::string origin;
};
std::vector<InstructExample> instruct_examples(const std::vector<InstructRecord>& records, const Tokenizer& tokenizer,
                                               const SampleOptions& options);

// A deterministic endless stream of (task, example index): stream position p draws its task from
// the weights with a seeded hash of p, and each task visits its own examples as Sampler does (its
// own seeded permutation per epoch). As Sampler, each call takes world x batch positions and this
// rank keeps its slice; a saved position restores the stream exactly. With one task the indices
// are exactly Sampler(sizes[t], seed)'s.
class TaskSampler {
 public:
  TaskSampler(std::vector<int64_t> sizes, std::vector<double> weights, uint64_t seed, int64_t rank = 0,
              int64_t world = 1);
  std::vector<std::pair<Task, int64_t>> next(int64_t batch);
  int64_t consumed() const { return consumed_; }
  void set_consumed(int64_t consumed);
  Task task_at(int64_t position) const;

 private:
  std::vector<Sampler> streams_;  // per task (size 1 where the task has no examples: never drawn)
  std::vector<double> weights_, cumulative_;
  int only_ = -1, last_ = 0;  // the one task with a weight, if only one has; the last that has one
  uint64_t seed_;
  int64_t rank_, world_;
  int64_t consumed_ = 0;
  std::vector<int64_t> drawn_;  // per task: positions before consumed_ that drew it
};

}  // namespace c3
