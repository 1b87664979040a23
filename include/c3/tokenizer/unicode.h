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

// NFC normalisation of valid UTF-8.
std::string nfc(std::string_view s);

}  // namespace c3::unicode
