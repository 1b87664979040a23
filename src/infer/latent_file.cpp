#include "c3/infer/latent_file.h"

#include <algorithm>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>

#include "c3/io/safetensors.h"
#include "c3/io/tensor_io.h"
#include "c3/util/dtype.h"
#include "c3/util/error.h"

namespace fs = std::filesystem;
using nlohmann::json;

namespace c3 {
void write_latent_file(const fs::path& path, const LatentFile& file) {
  if (!file.latents.defined() || file.latents.dim() != 3)
    throw Error("latents must be [spans, N, hidden] to write " + path.string());
  const int64_t spans = file.latents.size(0);
  if (static_cast<int64_t>(file.span_tokens.size()) != spans || static_cast<int64_t>(file.span_bytes.size()) != spans ||
      static_cast<int64_t>(file.span_joiners.size()) != spans)
    throw Error("span metadata does not match the latents' " + std::to_string(spans) + " spans for " + path.string());
  json bytes = json::array();
  for (const auto& [start, end] : file.span_bytes) bytes.push_back({start, end});
  const std::map<std::string, std::string> metadata{{"format", kLatentFormat},
                                                    {"format_version", std::to_string(kLatentFormatVersion)},
                                                    {"model_fingerprint", file.model_fingerprint},
                                                    {"latent_tokens", std::to_string(file.latent_tokens())},
                                                    {"source_path", file.source_path},
                                                    {"source_sha256", file.source_sha256},
                                                    {"span_tokens", json(file.span_tokens).dump()},
                                                    {"span_bytes", bytes.dump()},
                                                    {"span_joiners", json(file.span_joiners).dump()},
                                                    {"prompt_template", file.prompt_template},
                                                    {"c3_version", file.c3_version},
                                                    {"job_key", file.job_key}};
  io::write_tensors(path, {{"latents", file.latents}}, metadata);
}

namespace {

// A latent file from its parsed safetensors layout; `source` names it in errors.
LatentFile latent_from(const std::vector<io::TensorInfo>& tensors, const std::map<std::string, std::string>& meta,
                       const std::string& source) {
  auto field = [&](const std::string& key) -> const std::string& {
    auto it = meta.find(key);
    if (it == meta.end()) fail_file(source, "not a c3 latent file (no '" + key + "' in its metadata)");
    return it->second;
  };
  if (field("format") != kLatentFormat) fail_file(source, "not a c3 latent file (format '" + field("format") + "')");
  if (field("format_version") != std::to_string(kLatentFormatVersion))
    fail_file(source, "latent format version " + field("format_version") + " is not supported (this c3 reads " +
                          std::to_string(kLatentFormatVersion) + ")");
  const auto info =
      std::find_if(tensors.begin(), tensors.end(), [](const io::TensorInfo& t) { return t.name == "latents"; });
  if (info == tensors.end() || info->shape.size() != 3)
    fail_file(source, "no 'latents' tensor of shape [spans, N, hidden]");
  LatentFile file;
  file.latents = io::load_tensor(*info, io::to_scalar_type(info->dtype, source), at::kCPU, source);
  file.model_fingerprint = field("model_fingerprint");
  file.source_path = field("source_path");
  file.source_sha256 = field("source_sha256");
  file.prompt_template = field("prompt_template");
  file.c3_version = field("c3_version");
  if (auto it = meta.find("job_key"); it != meta.end()) file.job_key = it->second;
  try {
    file.span_tokens = json::parse(field("span_tokens")).get<std::vector<int64_t>>();
    for (const auto& pair : json::parse(field("span_bytes"))) file.span_bytes.emplace_back(pair.at(0), pair.at(1));
    file.span_joiners = json::parse(field("span_joiners")).get<std::vector<std::string>>();
  } catch (const json::exception& e) {
    fail_file(source, std::string("bad span metadata (") + e.what() + ")");
  }
  if (static_cast<int64_t>(file.span_tokens.size()) != info->shape[0] ||
      static_cast<int64_t>(file.span_bytes.size()) != info->shape[0] ||
      static_cast<int64_t>(file.span_joiners.size()) != info->shape[0])
    fail_file(source, "span metadata does not match the " + std::to_string(info->shape[0]) + " spans of 'latents'");
  if (std::to_string(info->shape[1]) != field("latent_tokens"))
    fail_file(source, "metadata says " + field("latent_tokens") + " latent tokens but 'latents' has " +
                          std::to_string(info->shape[1]));
  return file;
}

// The safetensors layer's errors ("SOURCE: header length ... exceeds ...") as what they mean here.
[[noreturn]] void not_a_latent_file(const Error& e, const std::string& source) {
  std::string problem = e.what();
  if (problem.rfind(source + ": ", 0) == 0) problem.erase(0, source.size() + 2);
  fail_file(source, "not a c3 latent file (" + problem + ")");
}

}  // namespace

LatentFile read_latent_file(const fs::path& path) {
  std::error_code ec;
  if (!fs::exists(path, ec)) fail_file(path.string(), "no such file");
  std::unique_ptr<io::SafetensorsReader> reader;
  try {
    reader = std::make_unique<io::SafetensorsReader>(path);
  } catch (const Error& e) {
    not_a_latent_file(e, path.string());
  }
  return latent_from(reader->tensors(), reader->metadata(), path.string());
}

LatentFile read_latent_bytes(const std::string& bytes, const std::string& source) {
  io::ParsedSafetensors parsed;
  try {
    parsed = io::parse_safetensors(reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size(), source);
  } catch (const Error& e) {
    not_a_latent_file(e, source);
  }
  return latent_from(parsed.tensors, parsed.metadata, source);
}

namespace {

// The metadata of a c3 latent file at `path`, without its tensor; nullopt for anything else.
std::optional<std::map<std::string, std::string>> latent_metadata(const fs::path& path) {
  std::error_code ec;
  if (!fs::is_regular_file(path, ec)) return std::nullopt;
  try {
    const io::SafetensorsReader reader(path);
    const auto format = reader.metadata().find("format");
    if (format == reader.metadata().end() || format->second != kLatentFormat) return std::nullopt;
    return reader.metadata();
  } catch (const Error&) {
    return std::nullopt;
  }
}

}  // namespace

std::string latent_job_key(const fs::path& path) {
  const auto meta = latent_metadata(path);
  if (!meta) return "";
  const auto it = meta->find("job_key");
  return it == meta->end() ? "" : it->second;
}

bool is_c3_latent_file(const fs::path& path) { return latent_metadata(path).has_value(); }

json describe_latent_file(const fs::path& path) {
  const LatentFile file = read_latent_file(path);
  int64_t text_tokens = 0;
  for (int64_t t : file.span_tokens) text_tokens += t;
  const int64_t latent_tokens = file.latents.size(0) * file.latents.size(1);
  return {{"format", kLatentFormat},
          {"format_version", kLatentFormatVersion},
          {"c3_version", file.c3_version},
          {"source_path", file.source_path},
          {"source_sha256", file.source_sha256},
          {"source_bytes", file.span_bytes.empty() ? 0 : file.span_bytes.back().second},
          {"spans", file.latents.size(0)},
          {"span_tokens", file.span_tokens},
          {"text_tokens", text_tokens},
          {"latent_tokens_per_span", file.latents.size(1)},
          {"hidden_size", file.latents.size(2)},
          {"dtype", scalar_type_name(file.latents.scalar_type())},
          {"compression_ratio", latent_tokens > 0 ? static_cast<double>(text_tokens) / latent_tokens : 0.0},
          {"model_fingerprint", file.model_fingerprint},
          {"prompt_template", file.prompt_template},
          {"job_key", file.job_key}};
}

}  // namespace c3
