// One table per subcommand binds each config key to its flag (if any), default, help and the
// settings field it fills: a key is spelled once, and declaring it and reading it back cannot
// drift apart.
#pragma once

#include <functional>
#include <string>
#include <type_traits>
#include <vector>

#include <nlohmann/json.hpp>

#include "c3/util/config.h"
#include "command.h"

namespace c3::cli {

template <typename Settings>
class SettingsTable {
 public:
  using Reader = std::function<void(const Config&, const std::string& key, Settings&)>;

  // `field` is a callable returning a reference to the member of Settings that the key fills
  // (C3_FIELD below). flag "" declares a config key with no flag.
  template <typename Field>
  SettingsTable& value(std::string flag, std::string key, nlohmann::json default_value, std::string help, Field field,
                       std::vector<std::string> choices = {}) {
    return custom(std::move(flag), std::move(key), std::move(default_value), std::move(help), reader(field),
                  std::move(choices));
  }
  // The same for a key that holds file paths (taken from a config file's folder, see Config).
  template <typename Field>
  SettingsTable& path(std::string flag, std::string key, nlohmann::json default_value, std::string help, Field field) {
    entries_.push_back(
        {std::move(flag), std::move(key), std::move(default_value), std::move(help), {}, true, reader(field)});
    return *this;
  }
  // A key whose value is turned into settings by `read`.
  SettingsTable& custom(std::string flag, std::string key, nlohmann::json default_value, std::string help, Reader read,
                        std::vector<std::string> choices = {}) {
    entries_.push_back({std::move(flag), std::move(key), std::move(default_value), std::move(help), std::move(choices),
                        false, std::move(read)});
    return *this;
  }

  // Declares every key, with its flag where it has one.
  void declare(CLI::App& app, Options& o) const {
    for (const auto& e : entries_) {
      if (e.is_path && !e.flag.empty())
        o.add_path(app, e.flag, e.key, e.default_value, e.help);
      else if (e.is_path)
        o.config().declare(e.key, e.default_value, e.help), o.config().mark_path(e.key);
      else if (!e.flag.empty())
        o.add(app, e.flag, e.key, e.default_value, e.help, e.choices);
      else
        o.config().declare(e.key, e.default_value, e.help, e.choices);
    }
  }

  // Fills `settings` from the merged config.
  void read(const Config& c, Settings& settings) const {
    for (const auto& e : entries_) e.read(c, e.key, settings);
  }

 private:
  struct Entry {
    std::string flag, key;
    nlohmann::json default_value;
    std::string help;
    std::vector<std::string> choices;
    bool is_path = false;
    Reader read;
  };

  template <typename Field>
  static Reader reader(Field field) {
    return [field](const Config& c, const std::string& key, Settings& s) {
      auto& target = field(s);
      target = c.get<std::decay_t<decltype(target)>>(key);
    };
  }

  std::vector<Entry> entries_;
};

}  // namespace c3::cli

// The member of the settings (`s`) that a key fills: C3_FIELD(sampling.min_tokens).
#define C3_FIELD(member) \
  [](auto& s) -> auto& { return s.member; }
