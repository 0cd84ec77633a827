// JSON Lines reading into a Table: one JSON object per line; the columns are the keys in first-seen order and a
// key missing from a line is null there. Values become text the way pandas' astype(str) shows them: strings
// as they are, integers in decimal, floats like Python's repr (1.0, 1e-05), booleans "True"/"False", null as
// a null cell, arrays and objects as compact JSON in file order. A file that starts with '[' is read as one JSON
// array of objects (the pandas "records" layout). Bad lines are errors naming the file and line; nesting deeper
// than io::kJsonMaxDepth and more than kMaxColumns keys are refused. Linear in the text (SAX events, no DOM).
#pragma once

#include <filesystem>
#include <string>
#include <string_view>

#include "llmstudio/data/table.h"

namespace llmstudio::data {

Table read_jsonl(const std::filesystem::path& path);

// Parses JSON Lines text; `source` names it in errors and becomes the table's source.
Table parse_jsonl(std::string_view text, const std::string& source);

}  // namespace llmstudio::data
