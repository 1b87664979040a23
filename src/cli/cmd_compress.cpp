// c3 compress --model DIR INPUT...: text files to latent files (*.c3), mirroring the input tree.
#include <unistd.h>

#include "batch_common.h"
#include "c3/infer/compressor.h"
#include "c3/tokenizer/tokenizer.h"
#include "c3/util/error.h"
#include "c3/util/file_selection.h"
#include "c3/util/stop_signals.h"

namespace c3::cli {
namespace {

// What `c3 compress` runs with.
struct CompressSettings {
  BatchSettings batch;
  std::vector<std::string> include, exclude;
  std::string latent_dtype;
  CompressOptions options;
};

// Every compress.* key, its flag, default and help, and the field it fills.
const SettingsTable<CompressSettings>& compress_table() {
  static const SettingsTable<CompressSettings> table = [] {
    SettingsTable<CompressSettings> t;
    add_batch_settings(t, "compress");
    t.value("--include", "compress.include", text_file_globs(),
            "Glob of files to take from folders, as in .gitignore (case-insensitive; repeat the flag for more)",
            C3_FIELD(include));
    t.value(
        "--exclude", "compress.exclude", nlohmann::json::array(),
        "Glob of files or folders to leave out, as in .gitignore ('sub', 'sub/**', '*.log'; repeat the flag for more)",
        C3_FIELD(exclude));
    t.value("--batch-tokens", "compress.batch_tokens", 16384, "Padded encoder tokens per batch",
            C3_FIELD(options.batch_tokens));
    t.value("--max-span-tokens", "compress.max_span_tokens", 0,
            "Longest span of text compressed at once; longer texts are cut (0: the longest text the model was trained "
            "on, else what --max-length allows)",
            C3_FIELD(options.max_span_tokens));
    t.value("--max-length", "compress.max_length", 0,
            "Cut texts into spans that fit this window with the prompt (0: see --max-span-tokens)",
            C3_FIELD(options.max_length));
    t.value("--latent-dtype", "compress.latent_dtype", "auto", std::string("Stored latents (") + kAutoDtypeHelp + ")",
            C3_FIELD(latent_dtype), dtype_choices());
    return t;
  }();
  return table;
}

}  // namespace

class CompressCommand : public Command {
 public:
  std::string name() const override { return "compress"; }
  std::string summary() const override { return "Compress text files into latent files (INPUT: files, folders or -)"; }
  void setup(CLI::App& app, Options& o) override {
    app.add_option("inputs", inputs_, "Files, folders (recursive) or - for stdin")->required();
    compress_table().declare(app, o);
  }
  int run(const Config& c, const Runtime& runtime) override {
    CompressSettings s;
    compress_table().read(c, s);
    CompressOptions& o = s.options;
    if (o.batch_tokens <= 0 || o.max_span_tokens < 0 || o.max_length < 0)
      throw UsageError("--batch-tokens must be positive, --max-span-tokens and --max-length >= 0");
    ListOptions list;
    list.include = s.include;
    list.exclude = s.exclude;
    list.warn_unmatched_include = s.include != text_file_globs();
    list.add_suffix = ".c3";
    const auto jobs = prepare_jobs(s.batch, inputs_, list, is_c3_latent_file, o.files.force);
    if (jobs.size() == 1 && jobs[0].to_stdout() && isatty(STDOUT_FILENO))
      throw UsageError("a latent file is binary: give -o FILE or redirect stdout");
    C3Codec codec = load_codec(s.batch.model, s.batch.dtype, runtime);
    o.dtype = resolve_dtype(s.latent_dtype, runtime.device);
    const StopSignals stop;
    o.files.stop = &stop;
    return finish(s.batch, compress_files(codec, jobs, o), "compress");
  }

 private:
  std::vector<std::string> inputs_;
};

C3_REGISTER_COMMAND(CompressCommand);

}  // namespace c3::cli
