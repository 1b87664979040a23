// A c3 subcommand. Each lives in one file of src/cli/ and registers itself with
// C3_REGISTER_COMMAND; main.cpp finds them through the registry.
#pragma once

#include <c10/core/Device.h>
#include <CLI/CLI.hpp>

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "c3/util/config.h"

namespace c3::cli {

struct Runtime {
  c10::Device device{c10::kCPU};
  int threads = 1;
};

// Binds command-line flags to config keys: a flag given on the command line overrides the key
// after config files and --set have been merged.
class Options {
 public:
  explicit Options(Config& config) : config_(config) {}
  Config& config() { return config_; }

  // Declares `key` with `default_value` and adds `flag` (e.g. "--lr") that sets it. For a list
  // key (array default) the flag takes one or more values and may be repeated; a boolean key's
  // flag takes no value (`--fail-fast`), or `--flag=false`.
  CLI::Option* add(CLI::App& app, const std::string& flag, const std::string& key, nlohmann::json default_value,
                   const std::string& help, std::vector<std::string> choices = {});
  // The same for a key that holds file paths (taken from a config file's folder, see Config).
  CLI::Option* add_path(CLI::App& app, const std::string& flag, const std::string& key, nlohmann::json default_value,
                        const std::string& help);
  // Applies the flags that were given, in command-line order.
  void apply();

 private:
  Config& config_;
  std::vector<std::pair<std::string, CLI::Option*>> bound_;
  std::vector<std::unique_ptr<std::string>> texts_;
  std::vector<std::unique_ptr<std::vector<std::string>>> lists_;  // parallel to texts_ (array keys)
  std::vector<std::unique_ptr<bool>> flags_;                      // parallel to texts_ (boolean keys)
};

class Command {
 public:
  virtual ~Command() = default;
  virtual std::string name() const = 0;
  virtual std::string summary() const = 0;
  // Declares the command's config keys and adds its options to `app`.
  virtual void setup(CLI::App& app, Options& options) = 0;
  // Called after config files, --set and flags are merged, before --dump-config: a command may add
  // settings from elsewhere underneath them (train: a run's saved train_config.json).
  virtual void complete_config(Config&) {}
  // Returns the exit code. Errors are thrown (c3::Error -> 1, c3::UsageError -> 2).
  virtual int run(const Config& config, const Runtime& runtime) = 0;
};

using CommandFactory = std::function<std::unique_ptr<Command>()>;
std::vector<CommandFactory>& command_registry();

struct CommandRegistrar {
  explicit CommandRegistrar(CommandFactory factory) { command_registry().push_back(std::move(factory)); }
};

}  // namespace c3::cli

#define C3_REGISTER_COMMAND(Type)                               \
  static const ::c3::cli::CommandRegistrar c3_register_##Type { \
    [] { return std::make_unique<Type>(); }                     \
  }
