// One `c3 eval` run into an output folder: selects the pages, evaluates them with a journal of page
// results (pages.partial.jsonl, fsynced per batch) so that a killed run resumes where it stopped,
// and writes pages.jsonl, the plots, report.md and, last, summary.json (its presence means finished).
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "c3/eval/eval_data.h"
#include "c3/eval/evaluator.h"
#include "c3/model/c3_model.h"
#include "c3/tokenizer/tokenizer.h"
#include "c3/util/output_record.h"

namespace c3 {

struct EvalRunSettings {
  std::filesystem::path output;
  std::string data;                     // the pages' source as the user named it (recorded)
  std::vector<std::string> conditions;  // "none" first, then the perturbations' names (options.conditions)
  int64_t limit = 0;                    // at most this many selected pages (0: all)
  int64_t max_span_tokens = 0;          // longer pages are cut into spans (0: what the trained window leaves)
  bool force = false;  // replace eval's outputs (and a journal) in `output`, even files c3 did not write
  std::vector<std::pair<std::string, std::string>> rejected;  // pages the data held that cannot be evaluated (recorded)
  std::string device;                                         // recorded
  EvalOptions options;
};

// Refuses, before any model is loaded, an output that is not a folder (or cannot be made), that
// holds a finished evaluation (its summary.json), or that holds files among `outputs` that c3 did
// not write (without force: c3 replaces only files it can show it wrote; with it, says how many it
// will). Every eval mode checks its folder so.
void check_eval_folder(const std::filesystem::path& output, const std::vector<std::filesystem::path>& outputs,
                       const WrittenByC3& written_by_c3, bool force);
void check_eval_output(const std::filesystem::path& output, bool force);  // the reconstruction protocol's

// Whether c3 wrote an eval output: a journal (*.partial.jsonl) by its header, any other file by its
// record (has_intact_record).
bool written_by_eval(const std::filesystem::path& path);

// Claims `outputs` again (files may have appeared since the check; returns how many foreign files
// force replaces) and removes them under force (a journal too: the run starts over). Every eval
// mode calls it before it opens its journal; the folder is made when the first file is written.
size_t prepare_eval_outputs(const std::vector<std::filesystem::path>& outputs, bool force);

// Evaluates `pages` (read from settings.data) and writes the outputs; returns the summary.
nlohmann::json run_evaluation(C3Codec& codec, const std::vector<EvalPage>& pages, EvalRunSettings settings);

}  // namespace c3
