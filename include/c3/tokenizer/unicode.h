// Unicode pieces the tokenizers need: the GPT-2 byte <-> unicode alphabet, UTF-8 repair, NFC.
#pragma once

#include <array>
#include <string>
#include <string_view>

namespace c3::unicode {

// GPT-2's byte-level alphabet: printable bytes stand for themselves, the others map to U+0100...
// Vocabulary files spell tokens in it; c3 keeps tokens as raw bytes internally.
const std::array<std::string, 256>& byte_to_unicode();  // byte -> UTF-8 of its stand-in
// Decodes a token spelled in that alphabet into raw bytes; false if a character is not in it.
bool unicode_to_bytes(std::string_view spelled, std::string* bytes);

// True when `s` is well-formed UTF-8.
bool is_valid_utf8(std::string_view s);
// Replaces every ill-formed sequence by U+FFFD, one per maximal subpart (what Python's
// bytes.decode("utf-8", errors="replace") does, and so what HF's decode returns).
std::string replace_invalid_utf8(std::string_view s);

// The tokenizers' input policy: `text` itself when it is valid UTF-8, else a repaired copy kept
// in `storage` (ill-formed bytes -> U+FFFD), with one warning per process.
std::string_view valid_utf8_or_repaired(std::string_view text, std::string& storage);

// ASCII whitespace as C's isspace and Python's str.strip() see it in ASCII text.
inline bool is_ascii_space(char c) { return c == ' ' || (c >= '\t' && c <= '\r'); }
// `s` without leading and trailing ASCII whitespace.
std::string_view strip_ascii_space(std::string_view s);

// The code points of `s` (ill-formed bytes -> U+FFFD, as replace_invalid_utf8), and back.
std::u32string code_points(std::string_view s);
std::string to_utf8(std::u32string_view code_points);

// Python's str.isspace(), which str.split() splits on: ASCII whitespace, U+001C..U+001F, U+0085,
// U+00A0, U+1680, U+2000..U+200A, U+2028, U+2029, U+202F, U+205F and U+3000.
inline bool is_python_space(char32_t c) {
  return c == ' ' || (c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x1F) || c == 0x85 || c == 0xA0 || c == 0x1680 ||
         (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F || c == 0x3000;
}

// NFC normalisation of valid UTF-8.
std::string nfc(std::string_view s);

}  // namespace c3::unicode
