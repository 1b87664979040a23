// What `c3 compress` and `c3 reconstruct` share on the command line: the SECTION.* keys every
// batch job has, loading the model, taking this shard's jobs, and reporting the run's summary.
#pragma once

#include <string>
#include <vector>

#include "c3/infer/codec.h"
#include "c3/infer/file_jobs.h"
#include "c3/util/dtype.h"
#include "c3/util/output_record.h"
#include "command.h"
#include "settings_table.h"

namespace c3::cli {

// The batch-job keys that are not the job's own options (those are FileJobOptions).
struct BatchSettings {
  std::string model, output, shard, summary, dtype;
};

// Declares SECTION.{model,output,force,fail_fast,shard,summary,progress,dtype} and their flags in
// the table of a settings struct with members `batch` (BatchSettings) and `options.files`
// (FileJobOptions).
template <typename Settings>
void add_batch_settings(SettingsTable<Settings>& t, const std::string& section) {
  t.path("-m,--model", section + ".model", "", "C3 checkpoint folder (required)", C3_FIELD(batch.model));
  t.path("-o,--output", section + ".output", "",
         "Output folder (mirrors the inputs), or file for one input; default stdout", C3_FIELD(batch.output));
  t.value("--force", section + ".force", false,
          "Redo every output (default: keep outputs that are up to date, i.e. made from the same input, model and "
          "settings, and redo the rest)",
          C3_FIELD(options.files.force));
  t.value("--fail-fast", section + ".fail_fast", false, "Stop at the first file that fails (else report it and go on)",
          C3_FIELD(options.files.fail_fast));
  t.value("--shard", section + ".shard", "",
          "Process slice I of N (I/N); default RANK/WORLD_SIZE or SLURM_PROCID/SLURM_NTASKS", C3_FIELD(batch.shard));
  t.path("--summary", section + ".summary", "", "Write a JSON summary of the run to this file",
         C3_FIELD(batch.summary));
  t.value("--dtype", section + ".dtype", "auto", std::string("Model dtype (") + kAutoDtypeHelp + ")",
          C3_FIELD(batch.dtype), dtype_choices());
  t.value("", section + ".progress", true, "Show a progress line on a terminal", C3_FIELD(options.files.progress));
}

// The codec of the model in `model` (a C3 folder, or a training run for its newest checkpoint) on
// the runtime's device, in `dtype` (resolve_dtype), with the authors' prompt and `instruction`,
// its decoder quantized as `quantize` says (C3LoadOptions::quantize).
C3Codec load_codec(const std::string& model, const std::string& dtype, const Runtime& runtime,
                   const std::string& instruction = kDefaultInstruction, const std::string& quantize = "none");

// SECTION.quantize (--quantize) for the commands that decode: reconstruct and eval.
inline constexpr const char* kQuantizeHelp =
    "Decoder weights for decoding steps on the CPU: int8 (weight-only, per output channel; 4x fewer bytes per "
    "token than float32) or none (the float weights)";

// The jobs of this shard (batch.shard, else the launcher's rank, which is warned about), checked
// before any work: every output's folder can be written, the summary's folder is made, and outputs
// that exist but that `written_by_c3` does not claim are refused unless `force` (c3 never
// replaces a file it did not write without being told to). Removes the temporaries an interrupted
// run left of this shard's outputs.
std::vector<FileJob> prepare_jobs(const BatchSettings& batch, const std::vector<std::string>& inputs, ListOptions list,
                                  const WrittenByC3& written_by_c3, bool force);

// Logs the closing line (and what was cut short: empty spans, spans at the token limit, an
// interruption), writes batch.summary (JSON, atomically) when set; returns the exit code: 128 +
// the signal when interrupted, 1 when any file failed, else 0. `verb`: "compress", "reconstruct".
int finish(const BatchSettings& batch, const JobSummary& summary, const std::string& verb);

}  // namespace c3::cli
