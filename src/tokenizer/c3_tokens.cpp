#include <nlohmann/json.hpp>

#include "c3/io/checkpoint_dir.h"
#include "c3/tokenizer/tokenizer.h"
#include "c3/util/atomic_file.h"
#include "c3/util/error.h"

namespace fs = std::filesystem;
using nlohmann::json;

namespace c3 {

const std::vector<std::string>& c3_image_tokens() {
  static const std::vector<std::string> tokens{"<imgpad>", "<img>", "</img>"};
  return tokens;
}

std::vector<std::pair<std::string, int32_t>> write_tokenizer_with_c3_tokens(const fs::path& source,
                                                                            const Tokenizer& tokenizer,
                                                                            const fs::path& destination) {
  std::vector<std::pair<std::string, int32_t>> added;
  int32_t next = static_cast<int32_t>(tokenizer.vocab_size());
  for (const auto& token : c3_image_tokens())
    if (!tokenizer.token_id(token)) added.emplace_back(token, next++);
  if (added.empty()) {
    copy_tokenizer_files(source, destination);
    return added;
  }
  std::error_code ec;
  const bool has_json = fs::exists(source / "tokenizer.json", ec);
  const bool has_vocab = fs::exists(source / "vocab.json", ec) && fs::exists(source / "merges.txt", ec);
  if (!fs::is_directory(source, ec) || (!has_json && !has_vocab))
    fail_file(source.string(),
              "the tokenizer lacks C3's image tokens and c3 can add them only to a folder with "
              "tokenizer.json or vocab.json + merges.txt");
  copy_tokenizer_files(source, destination);
  auto entry = [](const std::string& content, int32_t id) {
    return json{{"id", id},        {"content", content},  {"single_word", false}, {"lstrip", false},
                {"rstrip", false}, {"normalized", false}, {"special", true}};
  };
  if (has_json) {
    json doc = io::read_json_file(source / "tokenizer.json");
    if (!doc.contains("added_tokens") || !doc["added_tokens"].is_array()) doc["added_tokens"] = json::array();
    for (const auto& [token, id] : added) doc["added_tokens"].push_back(entry(token, id));
    write_file_atomically(destination / "tokenizer.json", doc.dump(2) + "\n");
  } else {
    json map = fs::exists(source / "added_tokens.json", ec) ? io::read_json_file(source / "added_tokens.json")
                                                            : json::object();
    for (const auto& [token, id] : added) map[token] = id;
    write_file_atomically(destination / "added_tokens.json", map.dump(2) + "\n");
  }
  if (fs::exists(source / "tokenizer_config.json", ec)) {
    json config = io::read_json_file(source / "tokenizer_config.json");
    if (config.contains("added_tokens_decoder") && config["added_tokens_decoder"].is_object()) {
      for (const auto& [token, id] : added) {
        json e = entry(token, id);
        e.erase("id");
        config["added_tokens_decoder"][std::to_string(id)] = e;
      }
      write_file_atomically(destination / "tokenizer_config.json", config.dump(2) + "\n");
    }
  }
  return added;
}

}  // namespace c3
