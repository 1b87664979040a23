// What `c3 compress` and `c3 reconstruct` share: turning INPUT arguments (files, folders, "-")
// into a deterministic list of jobs with mirrored output paths, sharding that list across
// processes, and the per-run summary.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

#include "c3/util/status_line.h"

namespace c3 {

struct FileJob {
  std::filesystem::path source;  // empty for stdin
  std::filesystem::path output;  // empty for stdout
  std::string name;              // the source as the user knows it (for messages)
  bool from_stdin() const { return source.empty(); }
  bool to_stdout() const { return output.empty(); }
};

class StopSignals;

// How a batch job (compress, reconstruct) treats its files, whatever it does to them.
struct FileJobOptions {
  bool force = false;                 // redo outputs that are up to date too, and replace files c3 did not write
  bool fail_fast = false;             // stop at the first file that fails (else report it and go on)
  bool progress = true;               // a status line on a terminal
  int64_t window_files = 64;          // files read ahead and grouped together
  const StopSignals* stop = nullptr;  // when given, a stop signal ends the job after the files finished so far
};

struct ListOptions {
  std::vector<std::string> include;  // gitignore-style globs below each folder (c3/util/file_selection.h)
  std::vector<std::string> exclude;
  bool warn_unmatched_include = true;  // false while `include` is the command's default
  std::filesystem::path output;        // a folder (or, for a single input, a file); empty: stdout
  std::string add_suffix;              // compress: ".c3"
  std::string remove_suffix;           // reconstruct: ".c3"
};

// Whether an output path means a folder: it is one, or it ends with '/' (`-o out/`).
bool names_a_folder(const std::filesystem::path& output);

// Files are taken as given; folders are walked recursively (sorted) and filtered by the globs
// (case-insensitive; a glob the user gave that matched nothing is warned about); "-" is stdin. A
// file `a/b.txt` under an input folder maps to OUTPUT/a/b.txt + add_suffix. With a single file (or
// stdin) input and an output that does not name a folder, OUTPUT is the output file itself.
// Errors name the problem: a missing input, several inputs to stdout, a folder with no matching
// file (the globs and what it holds instead), an output that is an input or would be read back as
// one on a rerun.
std::vector<FileJob> list_file_jobs(const std::vector<std::string>& inputs, const ListOptions& options);

// Checks, before any work, that every output's folder exists or can be made, and can be written
// (check_writable_folder); errors name the folder.
void check_output_locations(const std::vector<FileJob>& jobs);

// Which slice of the job list this process takes: --shard I/N, else RANK/WORLD_SIZE (torchrun),
// else SLURM_PROCID/SLURM_NTASKS, else 0/1.
struct Shard {
  int64_t index = 0, count = 1;
  std::string from;  // what set it: "--shard", "RANK/WORLD_SIZE", "SLURM_PROCID/SLURM_NTASKS"; "" for 0/1 by default
  static Shard parse(const std::string& text);  // "I/N"; empty: from the environment
};
// Job j belongs to shard j mod N: N processes split a list with no coordination.
std::vector<FileJob> take_shard(const std::vector<FileJob>& jobs, const Shard& shard);

// Outputs of an earlier run. A finished output records its job key: the digest of everything that
// made it (the input's bytes, the model fingerprint, each setting that changes the output's bytes).
// A rerun keeps an output only when the key it would record now is the recorded one, and redoes
// it otherwise (or always, with --force). compress keeps the key in the latent file's metadata;
// reconstruct, whose outputs are plain text, in its record beside the output
// (c3/util/output_record.h), which also shows that c3 wrote it: a job never replaces a file c3 did
// not write without --force.
std::string job_key(const nlohmann::json& parts);  // SHA-256 (hex) of parts.dump()

struct JobSummary {
  int64_t files = 0, written = 0, skipped = 0;
  int64_t redone = 0;            // of `written`: outputs that existed but were out of date (or --force)
  int64_t replaced_foreign = 0;  // of `written`: files c3 had not written, replaced under --force
  std::vector<std::pair<std::string, std::string>> failed;  // (file, error)
  int64_t spans = 0, text_tokens = 0, latent_tokens = 0, generated_tokens = 0;
  int64_t empty_spans = 0, spans_at_limit = 0;      // reconstruct: spans that came back empty / hit --max-new-tokens
  std::vector<std::string> files_with_empty_spans;  // reconstruct: which files those empty spans belong to
  int interrupted_by = 0;  // the signal (SIGINT, SIGTERM) that stopped the job early, 0 for none
  double seconds = 0;
  // Files neither written, kept nor failed: what an interrupted job left for a rerun.
  int64_t not_done() const { return files - written - skipped - static_cast<int64_t>(failed.size()); }
  nlohmann::json to_json() const;
};

}  // namespace c3
