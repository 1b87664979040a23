// Layered configuration: declared defaults < config files (JSON) < --set section.key=value <
// explicit command-line flags. Every key is declared with a default, whose JSON type is the key's
// type; unknown keys and wrong types are UsageErrors naming the key (and the file).
#pragma once

#include <nlohmann/json.hpp>
#include <map>
#include <string>
#include <vector>

namespace c3 {

class Config {
 public:
  // key: "section.name". choices: allowed values for string keys (empty: any).
  void declare(const std::string& key, nlohmann::json default_value, std::string help,
               std::vector<std::string> choices = {});
  bool declared(const std::string& key) const { return specs_.count(key) > 0; }

  void merge_file(const std::string& path);
  void merge_json(const nlohmann::json& values, const std::string& source);
  // "section.key=value"; value parsed as JSON unless the key is a string (then taken verbatim).
  void set_assignment(const std::string& assignment);
  // Sets a key from command-line text, parsed per the key's type.
  void set_text(const std::string& key, const std::string& text, const std::string& source);
  void set(const std::string& key, nlohmann::json value, const std::string& source);

  const nlohmann::json& at(const std::string& key) const;
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
  };
  nlohmann::json checked(const std::string& key, nlohmann::json value, const std::string& source) const;
  std::map<std::string, Spec> specs_;
  std::map<std::string, nlohmann::json> values_;
};

}  // namespace c3
