// libFuzzer target for the dataset readers and JSON from outside: the first byte picks what the rest goes to.
//   0: parse_csv     1: parse_jsonl     2: io::parse_json (+ json_preview)     3: dedup_column_names
// Checks: no crash, no exception other than llmstudio::Error (anything else escapes and libFuzzer reports it),
// and on success: unique column names, at most kMaxColumns, every row as wide as the header, cells valid UTF-8;
// parsed JSON no deeper than the limit, previews bounded and valid UTF-8; renamed headers unique, one per input
// name, each starting with its input name. Links llmstudio_core only (the readers are torch-free).
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <unordered_set>
#include <vector>

#include "llmstudio/core/error.h"
#include "llmstudio/data/csv_reader.h"
#include "llmstudio/data/jsonl_reader.h"
#include "llmstudio/data/table.h"
#include "llmstudio/io/json_text.h"

namespace {

using llmstudio::data::Table;

void check(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "invariant broken: %s\n", what);
    std::abort();
  }
}

bool valid_utf8(std::string_view s) { return !llmstudio::data::find_invalid_utf8(s).has_value(); }

void check_table(const Table& t) {
  check(t.num_columns() <= llmstudio::data::kMaxColumns, "more columns than kMaxColumns");
  std::unordered_set<std::string> seen;
  for (std::size_t c = 0; c < t.num_columns(); ++c) {
    check(seen.insert(t.column_names()[c]).second, "duplicate column name in a table");
    check(t.column(c).size() == t.num_rows(), "column height differs from the row count");
    for (const auto& cell : t.column(c))
      if (cell) check(valid_utf8(*cell), "cell is not valid UTF-8");
  }
}

template <typename J>
int depth_of(const J& j) {  // bounded by the parse limit, so recursion is shallow
  int d = 0;
  if (j.is_structured())
    for (const auto& v : j) d = std::max(d, depth_of(v));
  return j.is_structured() ? d + 1 : 0;
}

void fuzz_json(std::string_view text, int max_depth, std::size_t preview_chars) {
  try {
    auto j = llmstudio::io::parse_json(text, "fuzz", max_depth);
    check(depth_of(j) <= max_depth, "parsed JSON deeper than the limit");
    const std::string p = llmstudio::io::json_preview(j, preview_chars);
    check(p.size() <= preview_chars + 3, "preview longer than its bound");
    check(valid_utf8(p), "preview is not valid UTF-8");
    if (p.size() <= preview_chars && p.find("...") == std::string::npos)
      check(p == j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace), "short preview differs from dump");
  } catch (const llmstudio::Error&) {
  }
  check(llmstudio::io::try_parse_json(text, max_depth).has_value() ==
            [&] {
              try {
                llmstudio::io::parse_json(text, "fuzz", max_depth);
                return true;
              } catch (const llmstudio::Error&) {
                return false;
              }
            }(),
        "try_parse_json and parse_json disagree");
}

void fuzz_dedup(std::string_view text) {
  std::vector<std::string> names;
  std::vector<std::size_t> unnamed;
  std::size_t start = 0;
  for (std::size_t i = 0; i <= text.size() && names.size() < 2000; ++i) {
    if (i < text.size() && text[i] != ',') continue;
    std::string name(text.substr(start, i - start));
    if (name.empty()) {
      unnamed.push_back(names.size());
      name = "Unnamed: " + std::to_string(names.size());
    }
    names.push_back(std::move(name));
    start = i + 1;
  }
  const auto out = llmstudio::data::dedup_column_names(names, unnamed);
  check(out.size() == names.size(), "renaming changed the number of names");
  std::unordered_set<std::string> seen;
  for (std::size_t i = 0; i < out.size(); ++i) {
    check(seen.insert(out[i]).second, "renamed header names are not unique");
    check(out[i].rfind(names[i], 0) == 0, "renamed name does not start with its original");
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const uint8_t mode = data[0];
  const std::string_view rest(reinterpret_cast<const char*>(data + 1), size - 1);
  try {
    switch (mode % 4) {
      case 0:
        check_table(llmstudio::data::parse_csv(rest, "fuzz.csv"));
        break;
      case 1:
        check_table(llmstudio::data::parse_jsonl(rest, "fuzz.jsonl"));
        break;
      case 2:
        fuzz_json(rest, 1 + (mode >> 2) % 16, 8 + (mode >> 2));
        break;
      default:
        fuzz_dedup(rest);
        break;
    }
  } catch (const llmstudio::Error&) {
    // refused with a message: fine
  }
  return 0;
}
