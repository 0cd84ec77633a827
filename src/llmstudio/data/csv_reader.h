// RFC 4180 CSV reading into a Table: quoted fields with embedded commas, newlines and doubled quotes, LF or CRLF
// line ends, a UTF-8 byte-order mark. The first record is the header. Strict where pandas guesses: a row with
// more or fewer fields than the header, text after a closing quote, an unterminated quote and non-UTF-8 bytes
// are errors naming the file and line. As in pandas' read_csv (which H2O LLM Studio uses): blank lines are
// skipped, empty cells (quoted or not) are null, empty header names become "Unnamed: <i>" and repeated names
// "name.1", "name.2". Unlike pandas, text such as "NA" or "None" stays text.
#pragma once

#include <filesystem>
#include <string>
#include <string_view>

#include "llmstudio/data/table.h"

namespace llmstudio::data {

// Reads and parses a CSV file; errors name the file.
Table read_csv(const std::filesystem::path& path);

// Parses CSV text; `source` names it in errors and becomes the table's source.
Table parse_csv(std::string_view text, const std::string& source);

}  // namespace llmstudio::data
