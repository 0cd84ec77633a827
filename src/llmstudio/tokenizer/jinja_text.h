// Python `str` semantics on UTF-8 strings for the Jinja engine: code-point decoding, Python's whitespace set
// (str.isspace / re `\s`), strip/split/replace/case mapping, slicing by code point, repr() quoting, float repr()
// and the unicode-escape decoding that Jinja applies to string literals.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace llmstudio::tokenizer::jinja::text {

std::u32string decode(std::string_view s);  // UTF-8 -> code points (invalid bytes become U+FFFD)
std::string encode(std::u32string_view s);  // code points -> UTF-8
void append(std::string& out, char32_t c);
bool is_ascii(std::string_view s);
std::size_t length(std::string_view s);  // number of code points (Python len)

bool is_space(char32_t c);  // Python str.isspace() / re `\s`
bool is_all_space(std::string_view s);  // true for "" too

char32_t to_upper(char32_t c);  // simple case mapping: ASCII, Latin-1, Latin Extended-A, Greek, Cyrillic
char32_t to_lower(char32_t c);
std::string upper(std::string_view s);
std::string lower(std::string_view s);
std::string capitalize(std::string_view s);  // str.capitalize()
std::string title(std::string_view s);       // str.title()
std::string jinja_title(std::string_view s);  // Jinja's `title` filter (splits on [-\s({\[<]+)

// str.strip/lstrip/rstrip; chars == nullopt strips whitespace, otherwise any code point in *chars.
std::string strip(std::string_view s, const std::optional<std::string>& chars, bool left, bool right);
// str.split(sep, maxsplit) / str.rsplit; sep == nullopt splits on whitespace runs.
std::vector<std::string> split(std::string_view s, const std::optional<std::string>& sep, int64_t maxsplit,
                               bool from_right = false);
std::vector<std::string> splitlines(std::string_view s, bool keepends);
std::string replace(std::string_view s, std::string_view old, std::string_view repl, int64_t count = -1);
int64_t count(std::string_view s, std::string_view sub);
int64_t find(std::string_view s, std::string_view sub, bool from_right = false);  // code-point index or -1

// Python slice s[start:stop:step] over code points (nullopt = omitted).
std::string slice(std::string_view s, std::optional<int64_t> start, std::optional<int64_t> stop,
                  std::optional<int64_t> step);
// Resolves a Python slice over a sequence of length n into the selected indices.
std::vector<int64_t> slice_indices(int64_t n, std::optional<int64_t> start, std::optional<int64_t> stop,
                                   std::optional<int64_t> step);

std::string py_repr(std::string_view s);    // repr(str): quotes and escapes like CPython
std::string float_repr(double d);           // repr(float): shortest round-trip, CPython layout
std::string json_quote(std::string_view s);  // json.dumps(str, ensure_ascii=False)
std::string html_escape(std::string_view s);  // markupsafe.escape

// Decodes Python "unicode_escape" escapes (\n, \t, \\, \', \", \xNN, \uNNNN, \UNNNNNNNN, \ooo, \a \b \f \v \r,
// \N{...} unsupported -> kept). Unknown escapes keep the backslash, as Python does.
// Non-ASCII text passes through unchanged (Jinja: encode("ascii", "backslashreplace") first) unless
// `bytes_as_latin1`, which reproduces Python's codecs.decode(str, "unicode_escape"): the UTF-8 bytes of non-ASCII
// characters each become one U+0080..U+00FF code point (the mojibake H2O LLM Studio applies to its markers).
std::string unicode_unescape(std::string_view s, bool bytes_as_latin1 = false);

}  // namespace llmstudio::tokenizer::jinja::text
