// Unicode helpers for the tokenizer: UTF-8 decoding/encoding and repair (Python errors="replace" semantics),
// the GPT-2 byte-level byte<->char maps, character classes with Rust `char` semantics (is_whitespace,
// is_alphanumeric, is_numeric, punctuation, regex \w), and ICU-backed normalization (NFC/NFD/NFKC/NFKD) and
// per-character lowercasing.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

namespace llmstudio::tokenizer::unicode {

inline constexpr char32_t kReplacementChar = 0xFFFD;

// Decodes the code point at s[i] (s must be valid UTF-8) and advances i past it.
inline char32_t next_code_point(std::string_view s, std::size_t& i) {
  auto b0 = static_cast<unsigned char>(s[i]);
  if (b0 < 0x80) {
    ++i;
    return b0;
  }
  if (b0 < 0xE0) {
    char32_t c = ((b0 & 0x1Fu) << 6) | (static_cast<unsigned char>(s[i + 1]) & 0x3Fu);
    i += 2;
    return c;
  }
  if (b0 < 0xF0) {
    char32_t c = ((b0 & 0x0Fu) << 12) | ((static_cast<unsigned char>(s[i + 1]) & 0x3Fu) << 6) |
                 (static_cast<unsigned char>(s[i + 2]) & 0x3Fu);
    i += 3;
    return c;
  }
  char32_t c = ((b0 & 0x07u) << 18) | ((static_cast<unsigned char>(s[i + 1]) & 0x3Fu) << 12) |
               ((static_cast<unsigned char>(s[i + 2]) & 0x3Fu) << 6) | (static_cast<unsigned char>(s[i + 3]) & 0x3Fu);
  i += 4;
  return c;
}

// Byte length of the UTF-8 sequence starting with lead byte b (valid UTF-8 assumed).
inline std::size_t utf8_len(unsigned char b) { return b < 0x80 ? 1 : b < 0xE0 ? 2 : b < 0xF0 ? 3 : 4; }

void append_utf8(std::string& out, char32_t c);
std::string to_utf8(char32_t c);

bool is_valid_utf8(std::string_view s);
// Replaces each maximal ill-formed subsequence by U+FFFD (same as Python's bytes.decode("utf-8", "replace")
// and Rust's String::from_utf8_lossy). Returns s unchanged when it is valid.
std::string repair_utf8(std::string_view s);

// GPT-2 byte-level alphabet: byte -> UTF-8 of its printable stand-in char, and back (-1 if c is not one).
const std::array<std::string, 256>& byte_to_char_utf8();
int char_to_byte(char32_t c);
// Maps every byte of s to its byte-level char.
std::string byte_level_encode(std::string_view s);

// Character classes, matching Rust's char methods / regex crate classes.
bool is_whitespace(char32_t c);    // White_Space property (char::is_whitespace, regex \s)
bool is_alphabetic(char32_t c);    // Alphabetic property
bool is_numeric(char32_t c);       // general category Nd | Nl | No (char::is_numeric)
bool is_alphanumeric(char32_t c);  // is_alphabetic || is_numeric
bool is_word_char(char32_t c);     // regex \w: Alphabetic | M | Nd | Pc | Join_Control
bool is_punctuation(char32_t c);   // ASCII punctuation or general category P*
bool is_mark_nonspacing(char32_t c);  // general category Mn

enum class NormalForm { NFC, NFD, NFKC, NFKD };
std::string normalize(std::string_view s, NormalForm form);  // s must be valid UTF-8
std::string lowercase(std::string_view s);                     // per-char full lowercase mapping (no context)

// Python's str.isspace() code points (what str.split() and str.strip() use).
bool is_python_space(char32_t c);
// Python's str.strip() with no arguments, on valid UTF-8 text.
std::string_view python_strip(std::string_view s);

}  // namespace llmstudio::tokenizer::unicode
