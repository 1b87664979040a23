// c3 tokenizer train: a sentencepiece vocabulary for models trained from scratch.
#include <spdlog/spdlog.h>

#include "c3/tokenizer/sentencepiece.h"
#include "c3/util/error.h"
#include "c3/util/file_selection.h"
#include "settings_table.h"

namespace c3::cli {
namespace {

// Every tokenizer.* key, its flag, default and help, and the field it fills.
const SettingsTable<SentencePieceTrainOptions>& tokenizer_table() {
  static const SettingsTable<SentencePieceTrainOptions> table = [] {
    SettingsTable<SentencePieceTrainOptions> t;
    t.value("--vocab-size", "tokenizer.vocab_size", 8000, "Vocabulary size", C3_FIELD(vocab_size));
    t.value("--model-type", "tokenizer.model_type", "bpe", "sentencepiece algorithm", C3_FIELD(model_type),
            {"bpe", "unigram"});
    t.value("--character-coverage", "tokenizer.character_coverage", 1.0,
            "Share of characters the vocabulary must cover (rarer ones fall back to bytes)",
            C3_FIELD(character_coverage));
    return t;
  }();
  return table;
}

// Files as given; folders as the text files below them (as compress and train take folders).
std::vector<std::filesystem::path> text_files_of(const std::vector<std::string>& inputs) {
  std::vector<std::filesystem::path> files;
  for (const auto& input : inputs) {
    if (!std::filesystem::is_directory(input)) {
      files.emplace_back(input);
      continue;
    }
    FileSelection selection(text_file_globs(), {});
    const auto listing = selection.list(input);
    if (listing.taken.empty()) fail_file(input, "holds no files that match " + selection.describe());
    for (const auto& relative : listing.taken) files.push_back(std::filesystem::path(input) / relative);
  }
  return files;
}

}  // namespace

class TokenizerCommand : public Command {
 public:
  std::string name() const override { return "tokenizer"; }
  std::string summary() const override { return "Tokenizer tools: train a sentencepiece model"; }
  void setup(CLI::App& app, Options& options) override {
    app.require_subcommand(1);
    CLI::App* train = app.add_subcommand("train", "Train a sentencepiece model with the C3 special tokens");
    train
        ->add_option("--input", inputs_,
                     "Plain-text training files (one sentence or paragraph per line), or folders of them (their text "
                     "files, as compress takes them)")
        ->required()
        ->check(CLI::ExistingPath);
    train->add_option("-o,--output", output_, "Folder to create (holds tokenizer.model)")->required();
    train->add_flag("--force", force_, "Replace the output folder if it exists");
    tokenizer_table().declare(*train, options);
  }
  int run(const Config& config, const Runtime& runtime) override {
    SentencePieceTrainOptions o;
    o.inputs = text_files_of(inputs_);
    tokenizer_table().read(config, o);
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
