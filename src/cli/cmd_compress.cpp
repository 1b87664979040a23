// c3 compress --model DIR INPUT...: text files to latent files (*.c3), mirroring the input tree.
#include <unistd.h>

#include "batch_common.h"
#include "c3/infer/compressor.h"
#include "c3/model/qwen2.h"
#include "c3/tokenizer/tokenizer.h"
#include "c3/util/dtype.h"
#include "c3/util/error.h"

namespace c3::cli {

class CompressCommand : public Command {
 public:
  std::string name() const override { return "compress"; }
  std::string summary() const override { return "Compress text files into latent files (INPUT: files, folders or -)"; }
  void setup(CLI::App& app, Options& o) override {
    app.add_option("inputs", inputs_, "Files, folders (recursive) or - for stdin")->required();
    add_batch_options(app, o, "compress");
    o.add(app, "--include", "compress.include", nlohmann::json::array({"*.txt", "*.md", "*.text", "*.markdown", "*.rst"}),
          "Globs of files to take from folders (case-insensitive)");
    o.add(app, "--exclude", "compress.exclude", nlohmann::json::array(), "Globs of files to leave out");
    o.add(app, "--batch-tokens", "compress.batch_tokens", 16384, "Padded encoder tokens per batch");
    o.add(app, "--max-span-tokens", "compress.max_span_tokens", 0,
          "Longest span of text compressed at once; longer texts are cut (0: what --max-length allows)");
    o.add(app, "--max-length", "compress.max_length", 0,
          "The model's window (0: the length it was trained with, from its config.json, else 8192)");
    o.add(app, "--latent-dtype", "compress.latent_dtype", "auto", std::string("Stored latents (") + kAutoDtypeHelp + ")",
          dtype_choices());
  }
  int run(const Config& c, const Runtime& runtime) override {
    ListOptions list;
    list.include = c.get<std::vector<std::string>>("compress.include");
    list.exclude = c.get<std::vector<std::string>>("compress.exclude");
    list.add_suffix = ".c3";
    const auto jobs = shard_jobs(c, "compress", inputs_, list);
    if (jobs.size() == 1 && jobs[0].to_stdout() && isatty(STDOUT_FILENO))
      throw UsageError("a latent file is binary: give -o FILE or redirect stdout");
    auto [model, tokenizer, folder] = load_model_for(c, "compress", runtime);
    const C3Prompt prompt(*tokenizer, model->config().latent_tokens);
    CompressOptions o;
    o.batch_tokens = c.get<int64_t>("compress.batch_tokens");
    o.max_span_tokens = c.get<int64_t>("compress.max_span_tokens");
    o.max_length = c.get<int64_t>("compress.max_length");
    if (o.batch_tokens <= 0 || o.max_span_tokens < 0 || o.max_length < 0)
      throw UsageError("--batch-tokens must be positive, --max-span-tokens and --max-length >= 0");
    if (o.max_length == 0) o.max_length = model->config().max_length > 0 ? model->config().max_length : 8192;
    const std::string latent_dtype = c.get<std::string>("compress.latent_dtype");
    o.dtype = resolve_dtype(latent_dtype, runtime.device);
    o.force = c.get<bool>("compress.force");
    o.fail_fast = c.get<bool>("compress.fail_fast");
    o.progress = c.get<bool>("compress.progress");
    return finish(c, "compress", compress_files(model, *tokenizer, prompt, jobs, o), "compressed");
  }

 private:
  std::vector<std::string> inputs_;
};

C3_REGISTER_COMMAND(CompressCommand);

}  // namespace c3::cli
