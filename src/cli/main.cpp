// c3: one binary, subcommands registered in src/cli/cmd_*.cpp.
#include <c10/util/Exception.h>
#include <spdlog/spdlog.h>

#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <set>

#include "c3/torch_compat.h"
#include "c3/util/error.h"
#include "c3/util/runtime.h"
#include "c3/util/status_line.h"
#include "c3/util/stop_signals.h"
#include "c3/version.h"
#include "command.h"

namespace c3::cli {

std::vector<CommandFactory>& command_registry() {
  static std::vector<CommandFactory> registry;
  return registry;
}

namespace {

// What --help shows a flag's value as: INT, NUMBER, TEXT, the choices (a|b), or the element's type
// for a list (whose flag takes one value each time).
std::string value_type_name(const nlohmann::json& default_value, const std::vector<std::string>& choices) {
  if (!choices.empty()) {
    std::string joined;
    for (const auto& c : choices) joined += (joined.empty() ? "" : "|") + c;
    return joined;
  }
  if (default_value.is_array()) return "TEXT";
  if (default_value.is_number_integer()) return "INT";
  if (default_value.is_number()) return "NUMBER";
  return "TEXT";
}

}  // namespace

CLI::Option* Options::add(CLI::App& app, const std::string& flag, const std::string& key, nlohmann::json default_value,
                          const std::string& help, std::vector<std::string> choices) {
  config_.declare(key, default_value, help, choices);
  texts_.push_back(std::make_unique<std::string>());
  std::string allowed;
  for (const auto& c : choices) allowed += (allowed.empty() ? "" : "|") + c;
  std::string description =
      help + (allowed.empty() ? "" : " (" + allowed + ")") + " [" + key + ", default " + default_value.dump() + "]";
  lists_.push_back(default_value.is_array() ? std::make_unique<std::vector<std::string>>() : nullptr);
  flags_.push_back(default_value.is_boolean() ? std::make_unique<bool>(false) : nullptr);
  CLI::Option* opt = lists_.back()   ? app.add_option(flag, *lists_.back(), description)
                     : flags_.back() ? app.add_flag(flag, *flags_.back(), description)
                                     : app.add_option(flag, *texts_.back(), description);
  // Values are read as text and checked against the key's type later; --help shows that type.
  if (!flags_.back()) opt->type_name(value_type_name(default_value, choices));
  // A flag given twice (before and after the subcommand, or a script's default then the user's)
  // takes the last value, as the command line reads.
  if (!lists_.back()) opt->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
  bound_.emplace_back(key, opt);
  return opt;
}

CLI::Option* Options::add_path(CLI::App& app, const std::string& flag, const std::string& key,
                               nlohmann::json default_value, const std::string& help) {
  CLI::Option* opt = add(app, flag, key, std::move(default_value), help);
  config_.mark_path(key);
  return opt;
}

void Options::apply() {
  for (size_t i = 0; i < bound_.size(); ++i) {
    const auto& [key, opt] = bound_[i];
    if (opt->count() == 0) continue;
    if (lists_[i]) {
      config_.set(key, nlohmann::json(*lists_[i]), opt->get_name());
    } else if (flags_[i]) {
      config_.set(key, *flags_[i], opt->get_name());
    } else {
      config_.set_text(key, *texts_[i], opt->get_name());
    }
  }
}

namespace {

std::string version_text() {
  return std::string("c3 ") + C3_VERSION + "\nLibTorch " + compat::torch_version() +
         "\nCUDA available: " + (cuda_available() ? "yes" : "no") + "\nBLAS: " + blas_backend() + "\n";
}

// The options every subcommand takes (they may follow it).
struct GlobalFlags {
  std::vector<std::string> config_files, assignments;
  bool dump_config = false;
};

void add_global_options(CLI::App& app, Options& options, GlobalFlags& flags) {
  app.add_flag_callback(
      "--version", [] { throw CLI::CallForVersion(version_text(), 0); },
      "Print c3's version, the LibTorch version and whether CUDA is available");
  app.add_option("--config", flags.config_files, "JSON config file(s), merged in order over the defaults")
      ->check(CLI::ExistingFile);
  app.add_option("--set", flags.assignments, "Override one config key: section.key=value (repeatable)");
  app.add_flag("--dump-config", flags.dump_config, "Print the merged, validated config as JSON and exit");
  options.add(app, "--log-level", "runtime.log_level", "info", "Log level",
              {"trace", "debug", "info", "warn", "error", "off"});
  options.add_path(app, "--log-file", "runtime.log_file", "", "Also append logs to this file");
  options.add(app, "--threads", "runtime.threads", 0, "CPU threads for LibTorch (0 = all cores)");
  options.add(app, "--device", "runtime.device", "auto", "Device to run on", {"cpu", "cuda", "auto"});
  options.add(app, "--progress-every", "runtime.progress_every", 60.0,
              "Seconds between progress lines (rate, ETA) when stderr is not a terminal, as in batch logs (0: none)");
}

// The subcommands, each with the config sections it declares (--dump-config shows those and
// runtime's).
struct Commands {
  std::vector<std::unique_ptr<Command>> all;
  std::vector<std::pair<CLI::App*, std::set<std::string>>> owned;  // parallel to `all`
  size_t active() const {
    size_t i = 0;
    while (i < owned.size() && !owned[i].first->parsed()) ++i;
    return i;
  }
};

bool takes_positionals(CLI::App& app) {
  if (!app.get_options([](const CLI::Option* o) { return o->get_positional(); }).empty()) return true;
  for (CLI::App* sub : app.get_subcommands({}))
    if (takes_positionals(*sub)) return true;
  return false;
}

// A list flag would swallow the positional arguments after it (`--include '*.txt' corpus` would
// take corpus as a second glob): where a command, or a subcommand its flags may precede or follow,
// takes positional arguments, each list flag takes one value, and is repeated for more. (`train
// --data a b` and `tokenizer train --input *.txt` have no positionals to swallow.)
void one_value_per_list_flag(CLI::App& app) {
  if (takes_positionals(app))
    for (CLI::Option* o : app.get_options([](const CLI::Option* o) { return !o->get_positional(); }))
      if (o->get_allow_extra_args())  // a list option (CLI11 lets those take several values)
        o->expected(1)->allow_extra_args(false)->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
  for (CLI::App* sub : app.get_subcommands({})) one_value_per_list_flag(*sub);
}

Commands add_commands(CLI::App& app, Options& options, Config& config) {
  Commands commands;
  for (const auto& factory : command_registry()) {
    commands.all.push_back(factory());
    Command& cmd = *commands.all.back();
    CLI::App* sub = app.add_subcommand(cmd.name(), cmd.summary());
    const auto before = config.dump();
    cmd.setup(*sub, options);
    std::set<std::string> sections;
    const auto after = config.dump();
    for (auto it = after.begin(); it != after.end(); ++it) {
      if (!before.contains(it.key()) || before[it.key()].size() != it.value().size()) sections.insert(it.key());
    }
    commands.owned.emplace_back(sub, sections);
  }
  app.require_subcommand(1);
  return commands;
}

int report_parse_error(const CLI::App& app, const Commands& commands, const CLI::ParseError& e) {
  // CLI11 reports a misspelt subcommand as "a subcommand is required": name the word instead.
  const auto extra = app.remaining();
  if (!extra.empty() && extra.front().rfind("-", 0) != 0 && app.get_subcommands().empty()) {
    std::string names;
    for (const auto& cmd : commands.all) names += (names.empty() ? "" : ", ") + cmd->name();
    spdlog::error("unknown subcommand '{}' (choose from {}; run 'c3 --help' for usage)", extra.front(), names);
  } else {
    // Point to the help of the subcommand that was being parsed, where the options are.
    std::string help = "c3";
    for (const CLI::App* sub = &app; sub;) {
      const auto parsed = sub->get_subcommands();
      sub = parsed.empty() ? nullptr : parsed.front();
      if (sub) help += " " + sub->get_name();
    }
    spdlog::error("{} (run '{} --help' for usage)", e.what(), help);
  }
  return 2;
}

void print_config(const Config& config, const std::set<std::string>& sections) {
  nlohmann::json all = config.dump(), shown = nlohmann::json::object();
  shown["runtime"] = all["runtime"];
  for (const auto& section : sections) shown[section] = all[section];
  std::cout << shown.dump(2) << "\n";
}

Runtime configure_runtime(const Config& config) {
  configure_logging(config.get<std::string>("runtime.log_level"), config.get<std::string>("runtime.log_file"));
  configure_cpu_allocator();
  const double progress_every = config.get<double>("runtime.progress_every");
  if (!(progress_every >= 0)) throw UsageError("runtime.progress_every must be >= 0 (seconds)");
  set_status_log_interval(progress_every);
  Runtime runtime;
  runtime.threads = configure_threads(config.get<int>("runtime.threads"));
  runtime.device = resolve_device(config.get<std::string>("runtime.device"));
  const char* wait_policy = std::getenv("OMP_WAIT_POLICY");
  spdlog::debug("c3 {}: LibTorch {}, device {}, {} threads, OMP_WAIT_POLICY={}", C3_VERSION, compat::torch_version(),
                runtime.device.str(), runtime.threads, wait_policy ? wait_policy : "(unset)");
  return runtime;
}

int run_cli(int argc, char** argv) {
  CLI::App app{"c3: Context Cascade Compression (compress text into latent vectors and reconstruct it)", "c3"};
  app.fallthrough();  // global options may follow the subcommand
  Config config;
  Options options(config);
  GlobalFlags flags;
  add_global_options(app, options, flags);
  Commands commands = add_commands(app, options, config);
  one_value_per_list_flag(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForVersion& e) {
    std::cout << e.what();
    return 0;
  } catch (const CLI::Success& e) {  // --help
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    return report_parse_error(app, commands, e);
  }
  // Defaults < config files < --set < flags.
  for (const auto& file : flags.config_files) config.merge_file(file);
  for (const auto& a : flags.assignments) config.set_assignment(a);
  options.apply();
  const size_t active = commands.active();
  commands.all[active]->complete_config(config);
  if (flags.dump_config) {
    print_config(config, commands.owned[active].second);
    return 0;
  }
  const Runtime runtime = configure_runtime(config);
  return commands.all[active]->run(config, runtime);
}

}  // namespace
}  // namespace c3::cli

int main(int argc, char** argv) {
  // A file-size limit (ulimit -f) then fails the write with EFBIG, which c3 reports naming the file,
  // instead of killing the process in the middle of it.
  std::signal(SIGXFSZ, SIG_IGN);
  try {
    c3::configure_logging("info", "");  // stderr from the start: stdout is for results
    const int code = c3::cli::run_cli(argc, argv);
    // Results on stdout that did not all arrive (a full disk, /dev/full) are a failure.
    std::cout.flush();
    if (std::fflush(stdout) != 0 || std::ferror(stdout) || !std::cout)
      throw c3::Error(std::string("standard output: write failed: ") + std::strerror(errno ? errno : EIO));
    return code;
  } catch (const c3::Interrupted& e) {  // what was kept is already said
    return 128 + e.signal();
  } catch (const c3::UsageError& e) {
    spdlog::error("{}", e.what());
    return 2;
  } catch (const c3::Error& e) {
    spdlog::error("{}", e.what());
    return 1;
  } catch (const c10::Error& e) {
    std::string msg = e.what_without_backtrace();
    spdlog::error("{}", msg.substr(0, msg.find('\n')));
    return 1;
  } catch (const std::exception& e) {
    spdlog::error("{}", e.what());
    return 1;
  }
}
