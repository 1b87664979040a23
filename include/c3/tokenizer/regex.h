// The regular expressions of tokenizer.json files (Split patterns, Replace patterns), matched as
// Hugging Face `tokenizers` matches them with Oniguruma: leftmost-first alternation, Unicode
// classes, and after an empty match the search resumes one character later. PCRE2 with its JIT
// compiler runs them: the patterns real tokenizers use are linear on megabyte inputs there (see
// bench/tokenizer_speed.py), where std::regex recurses per character.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <string_view>

namespace c3 {

class Regex {
 public:
  // Throws c3::Error "`where`: ... regex does not compile at offset N: ..." on a bad pattern.
  Regex(const std::string& pattern, const std::string& where);
  ~Regex();
  Regex(Regex&&) noexcept;
  Regex& operator=(Regex&&) noexcept;

  // Calls found(start, end) for each match in `text` (valid UTF-8), left to right; empty matches
  // included. Throws c3::Error naming `where` if the engine fails (its stack, say): never drops text.
  void find_all(std::string_view text, const std::function<void(size_t, size_t)>& found) const;
  const std::string& pattern() const { return pattern_; }

 private:
  struct Code;
  std::unique_ptr<Code> code_;
  std::string pattern_, where_;
};

}  // namespace c3
