// Latent files (`*.c3`): what `c3 compress` writes and `c3 reconstruct` reads. A safetensors file
// any safetensors library opens: tensor "latents" [spans, N, decoder hidden], and in __metadata__
// the format and its version, the model fingerprint, N, the source path and sha256, the text token
// count and the byte range of every span, the prompt template and the c3 version.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

namespace c3 {

inline constexpr const char* kLatentFormat = "c3-latents";
inline constexpr int kLatentFormatVersion = 1;

struct LatentFile {
  at::Tensor latents;  // [spans, N, decoder hidden]
  std::string model_fingerprint;
  std::string source_path;
  std::string source_sha256;
  std::vector<int64_t> span_tokens;                     // text tokens per span
  std::vector<std::pair<int64_t, int64_t>> span_bytes;  // [start, end) byte offsets in the source
  // Whitespace that follows each span's text in the source (for the last span: the text's
  // trailing whitespace): reconstruction strips each span's output, so this restores the
  // boundaries when the spans are joined.
  std::vector<std::string> span_joiners;
  std::string prompt_template;
  std::string c3_version;
  std::string job_key;  // see file_jobs.h; "" in files written before c3 recorded it
  int64_t latent_tokens() const { return latents.defined() ? latents.size(1) : 0; }
};

// Writes atomically (complete or not at all); latents are stored in their own dtype.
void write_latent_file(const std::filesystem::path& path, const LatentFile& file);

// Reads and validates; errors name the file and the problem ("not a c3 latent file (...)" for
// anything that is not one).
LatentFile read_latent_file(const std::filesystem::path& path);
// The same from a latent file's bytes (standard input); `source` names it in errors.
LatentFile read_latent_bytes(const std::string& bytes, const std::string& source);

// The job key recorded in a latent file's metadata, without reading its tensor; "" when the file
// is missing, unreadable, not a c3 latent file or has none.
std::string latent_job_key(const std::filesystem::path& path);
// What `c3 info FILE.c3` shows: the metadata, the latents' shape and dtype, token counts and the
// compression ratio, as JSON. Errors as read_latent_file.
nlohmann::json describe_latent_file(const std::filesystem::path& path);

// Whether the file is a c3 latent file (its header says so; the tensor is not read): the files
// compress may replace without --force.
bool is_c3_latent_file(const std::filesystem::path& path);

}  // namespace c3
