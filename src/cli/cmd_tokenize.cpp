// c3 tokenize: text -> ids (or ids -> text) with a checkpoint's tokenizer, for shell scripts and
// for checking compression ratios.
#include <iostream>
#include <iterator>
#include <nlohmann/json.hpp>
#include <sstream>

#include "c3/model/run_folder.h"
#include "c3/tokenizer/tokenizer.h"
#include "c3/util/atomic_file.h"
#include "c3/util/error.h"
#include "command.h"

namespace c3::cli {

class TokenizeCommand : public Command {
 public:
  std::string name() const override { return "tokenize"; }
  std::string summary() const override { return "Print the token ids of a text (or, with --decode, the text of ids)"; }
  void setup(CLI::App& app, Options&) override {
    app.add_option("--tokenizer", tokenizer_, "Checkpoint folder, training run, tokenizer folder or tokenizer file")
        ->required();
    app.add_option("input", input_, "Input file; - or none for standard input");
    auto* count = app.add_flag("--count", count_, "Print only the number of tokens");
    auto* decode = app.add_flag("--decode", decode_, "Read whitespace-separated ids and print their text");
    auto* json = app.add_flag("--json", json_, "Print one JSON object with ids and count (or text)");
    auto* jsonl = app.add_flag("--jsonl", jsonl_,
                               "Input is JSON lines with a \"text\" field (with --decode: an \"ids\" list): print one "
                               "JSON line of ids and count (or text) per line");
    app.add_flag("--skip-special", skip_special_, "With --decode: leave out special tokens");
    app.add_flag("--special", special_,
                 "Read special-token strings (<|im_end|>, <img>, ...) as those tokens, as in prompts; by default they "
                 "are ordinary text, as compress, eval and train read documents");
    auto* add = app.add_flag("--add-special-tokens", add_special_,
                             "Add the tokenizer's post-processor tokens around the ids (BOS, EOS; Hugging Face's "
                             "add_special_tokens=True)");
    count->excludes(decode);
    add->excludes(decode);
    jsonl->excludes(json);
  }
  int run(const Config&, const Runtime&) override {
    const std::string source = input_ == "-" ? "<stdin>" : input_;
    std::string text;
    if (input_ == "-") {
      text.assign(std::istreambuf_iterator<char>(std::cin), std::istreambuf_iterator<char>());
    } else {
      text = read_text_file(input_);
    }
    const auto tokenizer = load_tokenizer(newest_checkpoint_of_run(tokenizer_));  // a training run: its newest
    if (decode_ && jsonl_) return decode_lines(*tokenizer, text, source);
    if (decode_) {
      std::vector<int32_t> ids;
      std::istringstream in(text);
      std::string word;
      while (in >> word) {
        size_t used = 0;
        long long id = -1;
        try {
          id = std::stoll(word, &used);
        } catch (...) {
        }
        if (used != word.size() || id < 0 || id > INT32_MAX) fail_file(source, "'" + word + "' is not a token id");
        ids.push_back(static_cast<int32_t>(id));
      }
      const std::string out = tokenizer->decode(ids, skip_special_);
      if (json_)
        std::cout << nlohmann::json{{"text", out}, {"count", ids.size()}}.dump() << "\n";
      else
        std::cout << out;
      return 0;
    }
    if (jsonl_) return encode_lines(*tokenizer, text, source);
    const auto ids = encode(*tokenizer, text);
    if (json_) {
      nlohmann::json j = {{"count", ids.size()}};
      if (!count_) j["ids"] = ids;
      std::cout << j.dump() << "\n";
    } else if (count_) {
      std::cout << ids.size() << "\n";
    } else {
      std::string line;
      for (size_t i = 0; i < ids.size(); ++i) line += (i ? " " : "") + std::to_string(ids[i]);
      std::cout << line << "\n";
    }
    return 0;
  }

 private:
  std::vector<int32_t> encode(const Tokenizer& tokenizer, std::string_view text) const {
    auto ids = special_ ? tokenizer.encode(text) : tokenizer.encode_text(text);
    return add_special_ ? tokenizer.with_special_tokens(std::move(ids)) : ids;
  }

  // Each JSON line of `input` (blank ones skipped), parsed, to `field`'s value, with its "FILE:LINE".
  template <typename Each>
  static void for_each_line(const std::string& input, const std::string& source, const char* field, Each each) {
    std::istringstream lines(input);
    std::string line;
    for (size_t n = 1; std::getline(lines, line); ++n) {
      if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
      const std::string where = source + ":" + std::to_string(n);
      nlohmann::json record;
      try {
        record = nlohmann::json::parse(line);
      } catch (const nlohmann::json::exception& e) {
        fail_file(where, std::string("not a JSON line (") + e.what() + ")");
      }
      if (!record.is_object() || !record.contains(field))
        fail_file(where, std::string("expected an object with \"") + field + "\"");
      each(record[field], where);
    }
  }

  // One {"ids": [...]} per line -> one {"text": ..., "count": ...} per line, printed when all are read.
  int decode_lines(const Tokenizer& tokenizer, const std::string& input, const std::string& source) const {
    std::string output;
    for_each_line(input, source, "ids", [&](const nlohmann::json& value, const std::string& where) {
      std::vector<int32_t> ids;
      if (!value.is_array()) fail_file(where, "\"ids\" is not a list of token ids");
      for (const auto& id : value) {
        if (!id.is_number_integer() || id.get<int64_t>() < 0 || id.get<int64_t>() > INT32_MAX)
          fail_file(where, id.dump() + " is not a token id");
        ids.push_back(static_cast<int32_t>(id.get<int64_t>()));
      }
      output += nlohmann::json{{"text", tokenizer.decode(ids, skip_special_)}, {"count", ids.size()}}.dump() + "\n";
    });
    std::cout << output;
    return 0;
  }

  // One text per JSON line (blank lines skipped); the output has one line per text, in order, and
  // is printed only when every line was read (a bad line leaves stdout empty).
  int encode_lines(const Tokenizer& tokenizer, const std::string& input, const std::string& source) const {
    std::string output;
    for_each_line(input, source, "text", [&](const nlohmann::json& value, const std::string& where) {
      if (!value.is_string()) fail_file(where, "expected an object with a string \"text\"");
      const auto ids = encode(tokenizer, value.get<std::string>());
      nlohmann::json out = {{"count", ids.size()}};
      if (!count_) out["ids"] = ids;
      output += out.dump() + "\n";
    });
    std::cout << output;
    return 0;
  }

  std::string tokenizer_, input_ = "-";
  bool count_ = false, decode_ = false, json_ = false, jsonl_ = false, skip_special_ = false, special_ = false,
       add_special_ = false;
};

C3_REGISTER_COMMAND(TokenizeCommand);

}  // namespace c3::cli
