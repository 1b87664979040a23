// c3 reconstruct --model DIR LATENT...: latent files back to text, mirroring compress.
#include <unistd.h>

#include "batch_common.h"
#include "c3/infer/reconstructor.h"
#include "c3/model/c3_prompt.h"
#include "c3/tokenizer/tokenizer.h"
#include "c3/util/error.h"
#include "c3/util/stop_signals.h"

namespace c3::cli {
namespace {

// What `c3 reconstruct` runs with.
struct ReconstructSettings {
  BatchSettings batch;
  std::string task = "reconstruct", instruction, quantize;
  ReconstructOptions options;
};

// Every reconstruct.* key, its flag, default and help, and the field it fills.
const SettingsTable<ReconstructSettings>& reconstruct_table() {
  static const SettingsTable<ReconstructSettings> table = [] {
    SettingsTable<ReconstructSettings> t;
    add_batch_settings(t, "reconstruct");
    t.value("--task", "reconstruct.task", "reconstruct",
            "reconstruct: each span back as text, joined; continue: what follows the file's text, from all its spans "
            "as one context",
            C3_FIELD(task), {"reconstruct", "continue"});
    t.value("--prompt", "reconstruct.prompt", "",
            "Instruction instead of \"Repeat the text: \" (ask the document a question), answered once from all its "
            "spans as one context",
            C3_FIELD(instruction));
    t.value("--max-new-tokens", "reconstruct.max_new_tokens", 4096, "Longest output per span",
            C3_FIELD(options.generate.max_new_tokens));
    t.value("--no-repeat-ngram", "reconstruct.no_repeat_ngram", 20, "Ban repeating n-grams of this size (0: off)",
            C3_FIELD(options.generate.no_repeat_ngram_size));
    t.value("--batch-size", "reconstruct.batch_size", 16, "Sequences decoded together", C3_FIELD(options.batch_size));
    t.value("--quantize", "reconstruct.quantize", "none", kQuantizeHelp, C3_FIELD(quantize), kQuantizeChoices);
    return t;
  }();
  return table;
}

}  // namespace

class ReconstructCommand : public Command {
 public:
  std::string name() const override { return "reconstruct"; }
  std::string summary() const override { return "Reconstruct text from latent files (LATENT: .c3 files or folders)"; }
  void setup(CLI::App& app, Options& o) override {
    app.add_option("inputs", inputs_, "Latent files, folders (recursive, *.c3) or - for stdin")->required();
    reconstruct_table().declare(app, o);
  }
  int run(const Config& c, const Runtime& runtime) override {
    ReconstructSettings s;
    reconstruct_table().read(c, s);
    const ReconstructOptions& o = s.options;
    if (o.generate.max_new_tokens <= 0 || o.batch_size <= 0 || o.generate.no_repeat_ngram_size < 0)
      throw UsageError("--max-new-tokens and --batch-size must be positive, --no-repeat-ngram >= 0");
    ListOptions list;
    list.include = {"*.c3"};
    list.remove_suffix = ".c3";
    const auto jobs = prepare_jobs(s.batch, inputs_, list, has_intact_record, s.options.files.force);
    if (jobs.size() == 1 && jobs[0].from_stdin() && isatty(STDIN_FILENO))
      throw UsageError(
          "'-' reads a latent file from standard input, which is a terminal: pipe one in (c3 compress ... | c3 "
          "reconstruct -m M -)");
    if (s.task == "continue" && !s.instruction.empty())
      throw UsageError("--task continue has its own instruction (\"Continue the text: \"): leave out --prompt");
    const std::string instruction = s.task == "continue"    ? kContinueInstruction
                                    : s.instruction.empty() ? kDefaultInstruction
                                                            : s.instruction;
    s.options.whole_file = s.task == "continue" || !s.instruction.empty();
    C3Codec codec = load_codec(s.batch.model, s.batch.dtype, runtime, instruction, s.quantize);
    const StopSignals stop;
    s.options.files.stop = &stop;
    return finish(s.batch, reconstruct_files(codec, jobs, s.options), "reconstruct");
  }

 private:
  std::vector<std::string> inputs_;
};

C3_REGISTER_COMMAND(ReconstructCommand);

}  // namespace c3::cli
