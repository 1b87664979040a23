// What `c3 info` reports about a checkpoint folder, as JSON (also the --json output).
#pragma once

#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>

namespace c3 {

// Context length used for the "memory to run" estimate (the C3 recipe's maximum length).
constexpr int64_t kInfoContextTokens = 8192;

// Reads config and safetensors headers only (no weights). For a C3 folder (model_type "C3")
// the encoder in llm1/ is described too and counted in `parameters`.
nlohmann::json describe_checkpoint(const std::filesystem::path& dir);

// Human-readable rendering of describe_checkpoint's JSON.
std::string format_checkpoint_info(const nlohmann::json& info);

std::string human_bytes(double bytes);   // "1.5 GiB"
std::string human_count(int64_t count);  // "1.54B"

}  // namespace c3
