// Layered configuration: declared defaults < config files (JSON) < --set section.key=value <
// explicit command-line flags. Every key is declared with a default, whose JSON type is the key's
// type; unknown keys and wrong types are UsageErrors naming the key (and the file). Relative paths
// in a config file are taken from the file's folder, as Marian does, so a config means the same
// from any working directory.
#pragma once

#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <vector>

namespace c3 {

class Config {
 public:
  // key: "section.name". choices: allowed values for string keys (empty: any).
  void declare(const std::string& key, nlohmann::json default_value, std::string help,
               std::vector<std::string> choices = {});
  bool declared(const std::string& key) const { return specs_.count(key) > 0; }
  // Marks a declared string or list-of-strings key as holding file paths (see merge_file).
  void mark_path(const std::string& key);
  bool is_path(const std::string& key) const;
  // Whether a path key's value names a file: not "", "-" (stdin/stdout) or "preset:NAME".
  static bool names_a_file(const std::string& value);

  // Relative path values (not "", "-" or "preset:NAME") become relative to the file's folder.
  void merge_file(const std::string& path);
  void merge_json(const nlohmann::json& values, const std::string& source);
  // Takes the keys of `sections` in `values` that nothing has set yet (a resumed run's saved
  // settings lie below config files, --set and flags, above the defaults).
  void merge_under(const nlohmann::json& values, const std::string& source, const std::set<std::string>& sections);
  // "section.key=value"; value parsed as JSON unless the key is a string (then taken verbatim).
  void set_assignment(const std::string& assignment);
  // Sets a key from command-line text, parsed per the key's type.
  void set_text(const std::string& key, const std::string& text, const std::string& source);
  void set(const std::string& key, nlohmann::json value, const std::string& source);

  const nlohmann::json& at(const std::string& key) const;
  // Where the key's value came from ("configs/x.json", "--set", "--data"); "" for the default.
  std::string origin(const std::string& key) const;
  // Throws an Error "PATH: no such file or folder (KEY, from ORIGIN)" for the first path of `key`
  // that does not exist ("", "-" and "preset:NAME" values are not paths).
  void require_existing_paths(const std::string& key) const;
  template <typename T>
  T get(const std::string& key) const {
    return at(key).get<T>();
  }

  nlohmann::json dump() const;  // nested {"section": {"key": value}}, sorted
  std::string help(const std::string& key) const;

 private:
  struct Spec {
    nlohmann::json default_value;
    std::string help;
    std::vector<std::string> choices;
    bool is_path = false;
  };
  nlohmann::json checked(const std::string& key, nlohmann::json value, const std::string& source) const;
  std::map<std::string, Spec> specs_;
  std::map<std::string, nlohmann::json> values_;
  std::map<std::string, std::string> origins_;
};

}  // namespace c3
