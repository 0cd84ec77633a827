// JSON from outside the process (request bodies, dataset lines, files in model folders, stored documents):
// parsing with a nesting limit, and bounded previews of values for error messages.
// Why: nlohmann's parser is iterative, but copying and dumping a value recurse once per nesting level, so a
// 200 KB text nested 100,000 deep overflows the stack as soon as it is copied or echoed. The depth is checked by
// a linear scan of the text before any DOM is built, and messages show json_preview(), never a whole dump().
#pragma once

#include <nlohmann/json.hpp>

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace llmstudio::io {

// Nesting limits: request bodies, dataset lines and stored documents; files of model folders (tokenizer.json,
// config.json, ...), which are legitimately a few levels deeper but never hundreds.
inline constexpr int kJsonMaxDepth = 64;
inline constexpr int kModelJsonMaxDepth = 128;

// The byte offset of the first '[' or '{' (outside strings) that opens a level deeper than max_depth, or
// nullopt. The outermost array/object is level 1. Linear, no allocation; does not validate the JSON.
std::optional<std::size_t> find_json_depth_excess(std::string_view text, int max_depth);

// Parses `text` as one JSON value. Throws llmstudio::Error naming `source`: for nesting deeper than max_depth
// (with the byte offset and the limit; checked before parsing) and for invalid JSON (the parser's reason and
// byte offset, bounded in length).
nlohmann::json parse_json(std::string_view text, const std::string& source, int max_depth = kJsonMaxDepth);
// The same, keeping the keys of objects in file order. ordered_json finds a key by linear search, so an object
// of n keys costs n^2/2 comparisons: for small files of known shape (model configs), not for data.
nlohmann::ordered_json parse_ordered_json(std::string_view text, const std::string& source,
                                          int max_depth = kJsonMaxDepth);

// Runs nlohmann's (iterative) SAX parser over `text` with `sax`, after the same depth check as parse_json; a
// syntax error throws like parse_json does, and exceptions thrown by `sax` pass through. For readers of large
// foreign input that build their own structures in linear time (e.g. JSON Lines rows in file order).
void sax_parse_json(std::string_view text, const std::string& source, nlohmann::json_sax<nlohmann::json>& sax,
                    int max_depth = kJsonMaxDepth);

// For text that may be incomplete or foreign (e.g. the lines of a metrics.jsonl being written): the value, or
// nullopt for invalid JSON or nesting deeper than max_depth. Never throws for bad text.
std::optional<nlohmann::json> try_parse_json(std::string_view text, int max_depth = kJsonMaxDepth);

// Compact JSON text of `value` for error messages: at most max_chars characters (then "..."), produced without
// recursion into the whole value (a nested value is shown up to the cut only), invalid UTF-8 replaced.
std::string json_preview(const nlohmann::json& value, std::size_t max_chars = 120);
std::string json_preview(const nlohmann::ordered_json& value, std::size_t max_chars = 120);

}  // namespace llmstudio::io
