// `c3 eval --task instruct`: answers to instructions about a context (records of context,
// instruction, answer), generated greedily from the context's latents, from the context as plain
// tokens, and from no context, scored as SQuAD scores them: exact match and token F1 after its
// normalisation (lower case, no punctuation, no articles, single spaces).
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "c3/data/dataset.h"
#include "c3/infer/codec.h"
#include "c3/util/stop_signals.h"

namespace c3 {

// SQuAD v1.1's normalize_answer. Letters are lower-cased in ASCII only, and bytes of non-ASCII
// characters count as word characters for the articles' word boundaries.
std::string squad_normalize(const std::string& text);
bool squad_exact_match(const std::string& prediction, const std::string& truth);
double squad_f1(const std::string& prediction, const std::string& truth);

struct InstructEvalRun {
  std::filesystem::path output;
  std::string data, device;  // recorded
  bool force = false;
  int64_t span_tokens = 0;  // contexts are cut into spans of at most this many tokens
  int64_t limit = 0;        // at most this many records (0: all)
  GenerateOptions generate;
  bool progress = true;
};

std::vector<std::filesystem::path> instruct_eval_outputs(const std::filesystem::path& output);
// Refuses what check_eval_output refuses for eval's outputs, before a model is loaded.
void check_instruct_eval_output(const std::filesystem::path& output, bool force);

// Generates and scores every record's answers under the three contexts; writes answers.jsonl,
// report.md and summary.json (last); returns the summary.
nlohmann::json run_instruct_eval(C3Codec& codec, const std::vector<InstructRecord>& records,
                                 const InstructEvalRun& run);

}  // namespace c3
