// The rule every c3 output follows: c3 replaces only a file it can show it wrote. A plain-text
// output (a reconstruction, eval's report) can show it by its record: a hidden `.NAME.c3-job`
// beside it holding the SHA-256 of the bytes c3 wrote there and the job key that made them (see
// infer/file_jobs.h). A file without a record, or changed since (its digest differs), is the
// user's: a job refuses to replace it unless told to (--force).
#pragma once

#include <filesystem>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

namespace c3 {

std::filesystem::path output_record_file(const std::filesystem::path& output);  // DIR/.NAME.c3-job

// The job key recorded for `output` when its record shows c3 wrote the file there as it is now;
// "" otherwise (no file, no record, or a file changed since).
std::string recorded_job_key(const std::filesystem::path& output);
bool has_intact_record(const std::filesystem::path& output);

// Writes `contents` to `output` atomically, with its record (the record first, naming both the
// new bytes and the ones they replace, so a kill between the two leaves a file c3 still owns).
void write_recorded_output(const std::filesystem::path& output, std::string_view contents, const std::string& job_key);

// Whether the file at a path shows that c3 wrote it (has_intact_record, is_c3_latent_file, ...).
using WrittenByC3 = std::function<bool(const std::filesystem::path&)>;

// The paths among `outputs` that exist but that `written_by_c3` does not claim (folders count as
// not c3's: a file cannot replace them).
std::vector<std::filesystem::path> foreign_files(const std::vector<std::filesystem::path>& outputs,
                                                 const WrittenByC3& written_by_c3);

// Refuses foreign files without `force`: an Error naming the first ("and N more"), saying what
// --force would do. With `force`, a warning says how many will be replaced. Returns them.
std::vector<std::filesystem::path> claim_outputs(const std::vector<std::filesystem::path>& outputs,
                                                 const WrittenByC3& written_by_c3, bool force);

// The one-line refusal for a foreign file at `path` (the first of `count`).
std::string foreign_file_message(const std::filesystem::path& path, size_t count);

}  // namespace c3
