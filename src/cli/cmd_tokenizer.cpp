// c3 tokenizer train: a sentencepiece vocabulary for models trained from scratch.
#include <spdlog/spdlog.h>

#include "c3/tokenizer/sentencepiece.h"
#include "c3/util/error.h"
#include "command.h"

namespace c3::cli {

class TokenizerCommand : public Command {
 public:
  std::string name() const override { return "tokenizer"; }
  std::string summary() const override { return "Tokenizer tools: train a sentencepiece model"; }
  void setup(CLI::App& app, Options& options) override {
    app.require_subcommand(1);
    CLI::App* train = app.add_subcommand("train", "Train a sentencepiece model with the C3 special tokens");
    train->add_option("--input", inputs_, "Plain-text training files (one sentence or paragraph per line)")
        ->required()
        ->check(CLI::ExistingFile);
    train->add_option("-o,--output", output_, "Folder to create (holds tokenizer.model)")->required();
    train->add_flag("--force", force_, "Replace the output folder if it exists");
    options.add(*train, "--vocab-size", "tokenizer.vocab_size", 8000, "Vocabulary size");
    options.add(*train, "--model-type", "tokenizer.model_type", "bpe", "sentencepiece algorithm", {"bpe", "unigram"});
    options.add(*train, "--character-coverage", "tokenizer.character_coverage", 1.0,
                "Share of characters the vocabulary must cover (rarer ones fall back to bytes)");
  }
  int run(const Config& config, const Runtime& runtime) override {
    SentencePieceTrainOptions o;
    for (const auto& f : inputs_) o.inputs.emplace_back(f);
    o.vocab_size = config.get<int>("tokenizer.vocab_size");
    o.model_type = config.get<std::string>("tokenizer.model_type");
    o.character_coverage = config.get<double>("tokenizer.character_coverage");
    o.threads = runtime.threads;
    o.overwrite = force_;
    train_sentencepiece(o, output_);
    spdlog::info("wrote {}/tokenizer.model", output_);
    return 0;
  }

 private:
  std::vector<std::string> inputs_;
  std::string output_;
  bool force_ = false;
};

C3_REGISTER_COMMAND(TokenizerCommand);

}  // namespace c3::cli
