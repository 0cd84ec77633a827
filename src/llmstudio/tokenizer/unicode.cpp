// UTF-8 helpers, byte-level maps, Rust-compatible character classes and ICU normalization (see unicode.h).
#include "llmstudio/tokenizer/unicode.h"

#include <unicode/uchar.h>
#include <unicode/unorm2.h>
#include <unicode/ustring.h>

#include <vector>

#include "llmstudio/core/error.h"

namespace llmstudio::tokenizer::unicode {

void append_utf8(std::string& out, char32_t c) {
  if (c < 0x80) {
    out.push_back(static_cast<char>(c));
  } else if (c < 0x800) {
    out.push_back(static_cast<char>(0xC0 | (c >> 6)));
    out.push_back(static_cast<char>(0x80 | (c & 0x3F)));
  } else if (c < 0x10000) {
    out.push_back(static_cast<char>(0xE0 | (c >> 12)));
    out.push_back(static_cast<char>(0x80 | ((c >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (c & 0x3F)));
  } else {
    out.push_back(static_cast<char>(0xF0 | (c >> 18)));
    out.push_back(static_cast<char>(0x80 | ((c >> 12) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | ((c >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (c & 0x3F)));
  }
}

std::string to_utf8(char32_t c) {
  std::string s;
  append_utf8(s, c);
  return s;
}

namespace {
// Length of the well-formed sequence at s[i] (Unicode table 3-7), or -(number of bytes forming a maximal
// ill-formed subpart, at least 1) when it is ill-formed.
int sequence_at(std::string_view s, std::size_t i) {
  auto b = [&](std::size_t k) -> int { return i + k < s.size() ? static_cast<unsigned char>(s[i + k]) : -1; };
  int b0 = b(0);
  if (b0 < 0x80) return 1;
  int need;
  int lo = 0x80, hi = 0xBF;
  if (b0 >= 0xC2 && b0 <= 0xDF) {
    need = 1;
  } else if (b0 >= 0xE0 && b0 <= 0xEF) {
    need = 2;
    if (b0 == 0xE0) lo = 0xA0;
    if (b0 == 0xED) hi = 0x9F;
  } else if (b0 >= 0xF0 && b0 <= 0xF4) {
    need = 3;
    if (b0 == 0xF0) lo = 0x90;
    if (b0 == 0xF4) hi = 0x8F;
  } else {
    return -1;
  }
  for (int k = 1; k <= need; ++k) {
    int c = b(k);
    int l = k == 1 ? lo : 0x80, h = k == 1 ? hi : 0xBF;
    if (c < l || c > h) return -k;
  }
  return need + 1;
}
}  // namespace

bool is_valid_utf8(std::string_view s) {
  std::size_t i = 0;
  while (i < s.size()) {
    if (static_cast<unsigned char>(s[i]) < 0x80) {
      ++i;
      continue;
    }
    int n = sequence_at(s, i);
    if (n < 0) return false;
    i += static_cast<std::size_t>(n);
  }
  return true;
}

std::string repair_utf8(std::string_view s) {
  std::string out;
  out.reserve(s.size() + 8);
  std::size_t i = 0;
  while (i < s.size()) {
    int n = sequence_at(s, i);
    if (n > 0) {
      out.append(s.data() + i, static_cast<std::size_t>(n));
      i += static_cast<std::size_t>(n);
    } else {
      append_utf8(out, kReplacementChar);
      i += static_cast<std::size_t>(-n);
    }
  }
  return out;
}

namespace {
struct ByteMaps {
  std::array<std::string, 256> to_char;
  std::vector<int> from_char;  // indexed by code point (< 512)
  ByteMaps() : from_char(512, -1) {
    int n = 0;
    for (int b = 0; b < 256; ++b) {
      bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
      char32_t c = printable ? static_cast<char32_t>(b) : static_cast<char32_t>(256 + n++);
      to_char[b] = to_utf8(c);
      from_char[c] = b;
    }
  }
};
const ByteMaps& byte_maps() {
  static const ByteMaps maps;
  return maps;
}
}  // namespace

const std::array<std::string, 256>& byte_to_char_utf8() { return byte_maps().to_char; }

int char_to_byte(char32_t c) { return c < 512 ? byte_maps().from_char[c] : -1; }

std::string byte_level_encode(std::string_view s) {
  const auto& map = byte_maps().to_char;
  std::string out;
  out.reserve(s.size() * 2);
  for (char ch : s) out += map[static_cast<unsigned char>(ch)];
  return out;
}

bool is_whitespace(char32_t c) {
  if (c < 0x80) return c == ' ' || (c >= 0x09 && c <= 0x0D);
  return u_hasBinaryProperty(static_cast<UChar32>(c), UCHAR_WHITE_SPACE);
}

bool is_alphabetic(char32_t c) {
  if (c < 0x80) return (c | 0x20) >= 'a' && (c | 0x20) <= 'z';
  return u_hasBinaryProperty(static_cast<UChar32>(c), UCHAR_ALPHABETIC);
}

bool is_numeric(char32_t c) {
  if (c < 0x80) return c >= '0' && c <= '9';
  auto t = u_charType(static_cast<UChar32>(c));
  return t == U_DECIMAL_DIGIT_NUMBER || t == U_LETTER_NUMBER || t == U_OTHER_NUMBER;
}

bool is_alphanumeric(char32_t c) { return is_alphabetic(c) || is_numeric(c); }

bool is_word_char(char32_t c) {
  if (c < 0x80) return is_alphabetic(c) || (c >= '0' && c <= '9') || c == '_';
  if (u_hasBinaryProperty(static_cast<UChar32>(c), UCHAR_ALPHABETIC)) return true;
  if (u_hasBinaryProperty(static_cast<UChar32>(c), UCHAR_JOIN_CONTROL)) return true;
  auto t = u_charType(static_cast<UChar32>(c));
  return t == U_NON_SPACING_MARK || t == U_COMBINING_SPACING_MARK || t == U_ENCLOSING_MARK ||
         t == U_DECIMAL_DIGIT_NUMBER || t == U_CONNECTOR_PUNCTUATION;
}

bool is_punctuation(char32_t c) {
  if (c < 0x80) return (c >= 0x21 && c <= 0x2F) || (c >= 0x3A && c <= 0x40) || (c >= 0x5B && c <= 0x60) ||
                       (c >= 0x7B && c <= 0x7E);
  auto t = u_charType(static_cast<UChar32>(c));
  return t == U_CONNECTOR_PUNCTUATION || t == U_DASH_PUNCTUATION || t == U_START_PUNCTUATION ||
         t == U_END_PUNCTUATION || t == U_INITIAL_PUNCTUATION || t == U_FINAL_PUNCTUATION ||
         t == U_OTHER_PUNCTUATION;
}

bool is_mark_nonspacing(char32_t c) { return c >= 0x80 && u_charType(static_cast<UChar32>(c)) == U_NON_SPACING_MARK; }

namespace {
std::u16string to_utf16(std::string_view s) {
  std::u16string out(s.size() + 1, u'\0');
  int32_t len = 0;
  UErrorCode err = U_ZERO_ERROR;
  u_strFromUTF8(out.data(), static_cast<int32_t>(out.size()), &len, s.data(), static_cast<int32_t>(s.size()), &err);
  LLMS_CHECK(U_SUCCESS(err), "tokenizer: UTF-8 -> UTF-16 conversion failed: ", u_errorName(err));
  out.resize(static_cast<std::size_t>(len));
  return out;
}

std::string from_utf16(const std::u16string& s) {
  std::string out(s.size() * 3 + 1, '\0');
  int32_t len = 0;
  UErrorCode err = U_ZERO_ERROR;
  u_strToUTF8(out.data(), static_cast<int32_t>(out.size()), &len, s.data(), static_cast<int32_t>(s.size()), &err);
  LLMS_CHECK(U_SUCCESS(err), "tokenizer: UTF-16 -> UTF-8 conversion failed: ", u_errorName(err));
  out.resize(static_cast<std::size_t>(len));
  return out;
}

bool is_ascii(std::string_view s) {
  for (char c : s)
    if (static_cast<unsigned char>(c) >= 0x80) return false;
  return true;
}
}  // namespace

std::string normalize(std::string_view s, NormalForm form) {
  if (is_ascii(s)) return std::string(s);
  UErrorCode err = U_ZERO_ERROR;
  const UNormalizer2* norm = nullptr;
  switch (form) {
    case NormalForm::NFC: norm = unorm2_getNFCInstance(&err); break;
    case NormalForm::NFD: norm = unorm2_getNFDInstance(&err); break;
    case NormalForm::NFKC: norm = unorm2_getNFKCInstance(&err); break;
    case NormalForm::NFKD: norm = unorm2_getNFKDInstance(&err); break;
  }
  LLMS_CHECK(U_SUCCESS(err) && norm, "tokenizer: ICU normalizer unavailable: ", u_errorName(err));
  std::u16string in = to_utf16(s);
  // NFKD can expand a lot (e.g. U+FDFA -> 18 code units); grow on overflow.
  std::u16string out(in.size() * 2 + 16, u'\0');
  for (;;) {
    err = U_ZERO_ERROR;
    int32_t len = unorm2_normalize(norm, in.data(), static_cast<int32_t>(in.size()), out.data(),
                                   static_cast<int32_t>(out.size()), &err);
    if (err == U_BUFFER_OVERFLOW_ERROR) {
      out.assign(static_cast<std::size_t>(len) + 1, u'\0');
      continue;
    }
    LLMS_CHECK(U_SUCCESS(err), "tokenizer: Unicode normalization failed: ", u_errorName(err));
    out.resize(static_cast<std::size_t>(len));
    break;
  }
  return from_utf16(out);
}

std::string lowercase(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  std::size_t i = 0;
  while (i < s.size()) {
    auto b = static_cast<unsigned char>(s[i]);
    if (b < 0x80) {
      out.push_back(static_cast<char>(b >= 'A' && b <= 'Z' ? b + 32 : b));
      ++i;
      continue;
    }
    char32_t c = next_code_point(s, i);
    UChar src[2];
    int32_t src_len = 0;
    U16_APPEND_UNSAFE(src, src_len, static_cast<UChar32>(c));
    UChar dst[16];
    UErrorCode err = U_ZERO_ERROR;
    int32_t n = u_strToLower(dst, 16, src, src_len, "", &err);
    if (U_FAILURE(err)) {
      append_utf8(out, c);
      continue;
    }
    for (int32_t k = 0; k < n;) {
      UChar32 cp;
      U16_NEXT_UNSAFE(dst, k, cp);
      append_utf8(out, static_cast<char32_t>(cp));
    }
  }
  return out;
}

bool is_python_space(char32_t c) {
  if (c < 0x80) return (c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x20);
  return c == 0x85 || c == 0xA0 || c == 0x1680 || (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 ||
         c == 0x202F || c == 0x205F || c == 0x3000;
}

std::string_view python_strip(std::string_view s) {
  std::size_t i = 0, begin = s.size(), end = 0;
  while (i < s.size()) {
    const std::size_t at = i;
    if (!is_python_space(next_code_point(s, i))) {
      if (begin == s.size()) begin = at;
      end = i;
    }
  }
  return begin == s.size() ? s.substr(s.size()) : s.substr(begin, end - begin);
}

}  // namespace llmstudio::tokenizer::unicode
