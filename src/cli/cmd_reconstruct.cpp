// c3 reconstruct --model DIR LATENT...: latent files back to text, mirroring compress.
#include <unistd.h>

#include "batch_common.h"
#include "c3/infer/reconstructor.h"
#include "c3/model/c3_prompt.h"
#include "c3/tokenizer/tokenizer.h"
#include "c3/util/error.h"

namespace c3::cli {

class ReconstructCommand : public Command {
 public:
  std::string name() const override { return "reconstruct"; }
  std::string summary() const override { return "Reconstruct text from latent files (LATENT: .c3 files or folders)"; }
  void setup(CLI::App& app, Options& o) override {
    app.add_option("inputs", inputs_, "Latent files, folders (recursive, *.c3) or - for stdin")->required();
    add_batch_options(app, o, "reconstruct");
    o.add(app, "--prompt", "reconstruct.prompt", "", "Instruction instead of \"Repeat the text: \" (ask the document a question)");
    o.add(app, "--max-new-tokens", "reconstruct.max_new_tokens", 4096, "Longest output per span");
    o.add(app, "--no-repeat-ngram", "reconstruct.no_repeat_ngram", 20, "Ban repeating n-grams of this size (0: off)");
    o.add(app, "--batch-size", "reconstruct.batch_size", 16, "Sequences decoded together");
  }
  int run(const Config& c, const Runtime& runtime) override {
    ListOptions list;
    list.include = {"*.c3"};
    list.remove_suffix = ".c3";
    const auto jobs = shard_jobs(c, "reconstruct", inputs_, list);
    if (jobs.size() == 1 && jobs[0].from_stdin() && isatty(STDIN_FILENO))
      throw UsageError("'-' reads a latent file from standard input, which is a terminal: pipe one in (c3 compress ... | c3 reconstruct -m M -)");
    auto [model, tokenizer, folder] = load_model_for(c, "reconstruct", runtime);
    const std::string instruction = c.get<std::string>("reconstruct.prompt");
    const C3Prompt prompt(*tokenizer, model->config().latent_tokens, kDefaultPromptTemplate,
                          instruction.empty() ? kDefaultInstruction : instruction);
    ReconstructOptions o;
    o.generate.max_new_tokens = c.get<int64_t>("reconstruct.max_new_tokens");
    o.generate.no_repeat_ngram_size = c.get<int64_t>("reconstruct.no_repeat_ngram");
    o.batch_size = c.get<int64_t>("reconstruct.batch_size");
    if (o.generate.max_new_tokens <= 0 || o.batch_size <= 0 || o.generate.no_repeat_ngram_size < 0)
      throw UsageError("--max-new-tokens and --batch-size must be positive, --no-repeat-ngram >= 0");
    o.force = c.get<bool>("reconstruct.force");
    o.fail_fast = c.get<bool>("reconstruct.fail_fast");
    o.progress = c.get<bool>("reconstruct.progress");
    return finish(c, "reconstruct", reconstruct_files(model, *tokenizer, prompt, jobs, o), "reconstructed");
  }

 private:
  std::vector<std::string> inputs_;
};

C3_REGISTER_COMMAND(ReconstructCommand);

}  // namespace c3::cli
