#include "c3/util/config.h"

#include <filesystem>

#include "c3/util/atomic_file.h"
#include "c3/util/error.h"

using nlohmann::json;

namespace c3 {
namespace {

const char* type_name(const json& v) {
  if (v.is_boolean()) return "a boolean";
  if (v.is_number_integer()) return "an integer";
  if (v.is_number()) return "a number";
  if (v.is_string()) return "a string";
  if (v.is_array()) return "a list";
  if (v.is_object()) return "an object";
  return "null";
}

// A value in a message: as JSON, with ill-formed UTF-8 (a --set value is raw bytes) replaced.
std::string shown(const json& value) { return value.dump(-1, ' ', false, json::error_handler_t::replace); }

bool same_type(const json& expected, const json& got) {
  if (expected.is_number_integer()) return got.is_number_integer();
  if (expected.is_number()) return got.is_number();
  return expected.type() == got.type();
}

std::vector<std::string> path_values(const json& value) {
  if (value.is_string()) return {value.get<std::string>()};
  std::vector<std::string> out;
  if (value.is_array())
    for (const auto& v : value)
      if (v.is_string()) out.push_back(v.get<std::string>());
  return out;
}

json relative_to(const json& value, const std::filesystem::path& folder) {
  auto rebase = [&](const json& v) -> json {
    if (!v.is_string() || !Config::names_a_file(v.get<std::string>())) return v;
    const std::filesystem::path p = v.get<std::string>();
    return p.is_absolute() ? v : json((folder / p).lexically_normal().string());
  };
  if (!value.is_array()) return rebase(value);
  json out = json::array();
  for (const auto& v : value) out.push_back(rebase(v));
  return out;
}

}  // namespace

bool Config::names_a_file(const std::string& value) {
  return !value.empty() && value != "-" && value.rfind("preset:", 0) != 0;
}

void Config::mark_path(const std::string& key) {
  auto it = specs_.find(key);
  if (it == specs_.end()) throw Error("internal: config key '" + key + "' was never declared");
  it->second.is_path = true;
}

bool Config::is_path(const std::string& key) const {
  auto it = specs_.find(key);
  return it != specs_.end() && it->second.is_path;
}

void Config::declare(const std::string& key, json default_value, std::string help, std::vector<std::string> choices) {
  if (key.find('.') == std::string::npos) throw Error("config key '" + key + "' must be section.name");
  values_[key] = default_value;
  origins_.erase(key);
  specs_[key] = Spec{std::move(default_value), std::move(help), std::move(choices)};
}

json Config::checked(const std::string& key, json value, const std::string& source) const {
  const std::string where = source.empty() ? "" : source + ": ";
  auto it = specs_.find(key);
  if (it == specs_.end()) throw UsageError(where + "unknown config key '" + key + "'");
  const Spec& spec = it->second;
  if (!same_type(spec.default_value, value))
    throw UsageError(where + "config key '" + key + "' must be " + type_name(spec.default_value) + ", got " +
                     shown(value));
  if (spec.default_value.is_number_float()) value = value.get<double>();
  if (!spec.choices.empty()) {
    bool ok = false;
    for (const auto& c : spec.choices) ok = ok || value == c;
    if (!ok) {
      std::string list;
      for (const auto& c : spec.choices) list += (list.empty() ? "" : ", ") + c;
      throw UsageError(where + "config key '" + key + "' must be one of " + list + ", got " + shown(value));
    }
  }
  return value;
}

void Config::set(const std::string& key, json value, const std::string& source) {
  values_[key] = checked(key, std::move(value), source);
  origins_[key] = source;
}

void Config::merge_json(const json& values, const std::string& source) {
  if (!values.is_object()) throw UsageError(source + ": a config file must be a JSON object of sections");
  for (auto s = values.begin(); s != values.end(); ++s) {
    if (!s.value().is_object()) {
      throw UsageError(source + ": '" + s.key() + "' must be a section (an object of keys)");
    }
    for (auto k = s.value().begin(); k != s.value().end(); ++k) set(s.key() + "." + k.key(), k.value(), source);
  }
}

void Config::merge_file(const std::string& path) {
  std::string text;
  try {
    text = read_text_file(path, kMaxMetadataFileBytes);
  } catch (const Error& e) {
    throw UsageError(e.what());
  }
  json values;
  try {
    values = json::parse(text);
  } catch (const json::exception& e) {
    throw UsageError(path + ": invalid JSON (" + e.what() + ")");
  }
  const std::filesystem::path folder = std::filesystem::path(path).parent_path();
  if (values.is_object() && !folder.empty()) {
    for (auto s = values.begin(); s != values.end(); ++s) {
      if (!s.value().is_object()) continue;
      for (auto k = s.value().begin(); k != s.value().end(); ++k)
        if (is_path(s.key() + "." + k.key())) k.value() = relative_to(k.value(), folder);
    }
  }
  merge_json(values, path);
}

void Config::merge_under(const json& values, const std::string& source, const std::set<std::string>& sections) {
  if (!values.is_object()) throw UsageError(source + ": a config file must be a JSON object of sections");
  for (const auto& section : sections) {
    if (!values.contains(section) || !values[section].is_object()) continue;
    for (auto k = values[section].begin(); k != values[section].end(); ++k) {
      const std::string key = section + "." + k.key();
      if (origins_.count(key) == 0) set(key, k.value(), source);
    }
  }
}

void Config::set_text(const std::string& key, const std::string& text, const std::string& source) {
  auto it = specs_.find(key);
  if (it == specs_.end()) throw UsageError(source + ": unknown config key '" + key + "'");
  if (it->second.default_value.is_string()) {
    set(key, text, source);
    return;
  }
  json value;
  try {
    value = json::parse(text);
  } catch (const json::exception&) {
    throw UsageError(source + ": config key '" + key + "' must be " + type_name(it->second.default_value) + ", got '" +
                     text + "'");
  }
  set(key, std::move(value), source);
}

void Config::set_assignment(const std::string& assignment) {
  const auto eq = assignment.find('=');
  if (eq == std::string::npos || eq == 0) throw UsageError("--set " + assignment + ": expected section.key=value");
  set_text(assignment.substr(0, eq), assignment.substr(eq + 1), "--set");
}

const json& Config::at(const std::string& key) const {
  auto it = values_.find(key);
  if (it == values_.end()) throw Error("internal: config key '" + key + "' was never declared");
  return it->second;
}

std::string Config::origin(const std::string& key) const {
  auto it = origins_.find(key);
  return it == origins_.end() ? "" : it->second;
}

void Config::require_existing_paths(const std::string& key) const {
  for (const auto& path : path_values(at(key))) {
    std::error_code ec;
    if (!names_a_file(path) || std::filesystem::exists(path, ec)) continue;
    const std::string from = origin(key);
    throw Error(path + ": no such file or folder (" + key + (from.empty() ? "" : ", from " + from) + ")");
  }
}

json Config::dump() const {
  json out = json::object();
  for (const auto& [key, value] : values_) {
    const auto dot = key.find('.');
    out[key.substr(0, dot)][key.substr(dot + 1)] = value;
  }
  return out;
}

std::string Config::help(const std::string& key) const {
  auto it = specs_.find(key);
  return it == specs_.end() ? "" : it->second.help;
}

}  // namespace c3
