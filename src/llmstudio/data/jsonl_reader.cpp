// JSON Lines parser (see jsonl_reader.h).
#include "llmstudio/data/jsonl_reader.h"

#include <nlohmann/json.hpp>

#include <unordered_map>

#include "llmstudio/core/error.h"
#include "llmstudio/io/atomic_file.h"

namespace llmstudio::data {
namespace {

Cell to_cell(const nlohmann::ordered_json& v) {
  switch (v.type()) {
    case nlohmann::ordered_json::value_t::null:
      return std::nullopt;
    case nlohmann::ordered_json::value_t::string:
      return v.get<std::string>();
    case nlohmann::ordered_json::value_t::boolean:
      return v.get<bool>() ? "True" : "False";  // as pandas astype(str) shows them
    case nlohmann::ordered_json::value_t::number_integer:
      return std::to_string(v.get<int64_t>());
    case nlohmann::ordered_json::value_t::number_unsigned:
      return std::to_string(v.get<uint64_t>());
    case nlohmann::ordered_json::value_t::number_float:
      return format_python_float(v.get<double>());
    default:
      return v.dump();  // arrays, objects
  }
}

class Builder {
 public:
  explicit Builder(const std::string& source) : table_({}, source) {}

  void add_object(const nlohmann::ordered_json& obj) {
    std::vector<Cell> cells(table_.num_columns());
    for (const auto& [key, value] : obj.items()) {
      auto it = index_.find(key);
      std::size_t col;
      if (it == index_.end()) {
        col = table_.add_column(key);
        index_.emplace(key, col);
        cells.emplace_back();
      } else {
        col = it->second;
      }
      cells[col] = to_cell(value);
    }
    table_.add_row(std::move(cells));
  }
  Table take() { return std::move(table_); }

 private:
  Table table_;
  std::unordered_map<std::string, std::size_t> index_;
};

std::string type_name(const nlohmann::ordered_json& v) { return v.type_name(); }

}  // namespace

Table parse_jsonl(std::string_view text, const std::string& source) {
  if (auto bad = find_invalid_utf8(text)) {
    std::size_t line = 1;
    for (std::size_t i = 0; i < *bad; ++i) line += text[i] == '\n';
    fail(source, ": not valid UTF-8 at line ", line, ", byte offset ", *bad,
         "\n  hint: JSON text must be UTF-8; re-save the file as UTF-8");
  }
  if (text.substr(0, 3) == "\xEF\xBB\xBF") text.remove_prefix(3);
  auto first = text.find_first_not_of(" \t\r\n");
  if (first == std::string_view::npos) fail(source, ": empty file (no JSON objects)");
  Builder builder(source);

  if (text[first] == '[') {  // a single JSON array of records
    nlohmann::ordered_json doc;
    try {
      doc = nlohmann::ordered_json::parse(text);
    } catch (const nlohmann::ordered_json::parse_error& e) {
      fail(source, ": not valid JSON (read as one array because it starts with '['): ", e.what());
    }
    LLMS_CHECK(doc.is_array(), source, ": expected a JSON array of objects");
    for (std::size_t i = 0; i < doc.size(); ++i) {
      LLMS_CHECK(doc[i].is_object(), source, ": array element ", i, " is a JSON ", type_name(doc[i]),
                 ", expected an object with one key per column");
      builder.add_object(doc[i]);
    }
    return builder.take();
  }

  std::size_t line = 0, pos = 0;
  while (pos < text.size()) {
    std::size_t end = text.find('\n', pos);
    if (end == std::string_view::npos) end = text.size();
    std::string_view raw = text.substr(pos, end - pos);
    pos = end + 1;
    ++line;
    if (raw.find_first_not_of(" \t\r") == std::string_view::npos) continue;  // blank line
    nlohmann::ordered_json obj;
    try {
      obj = nlohmann::ordered_json::parse(raw);
    } catch (const nlohmann::ordered_json::parse_error& e) {
      fail(source, ": line ", line, ": not valid JSON: ", e.what(),
           "\n  hint: JSON Lines needs one complete JSON object per line (newlines inside strings are written \\n)");
    }
    LLMS_CHECK(obj.is_object(), source, ": line ", line, ": expected a JSON object, found a JSON ", type_name(obj));
    builder.add_object(obj);
  }
  return builder.take();
}

Table read_jsonl(const std::filesystem::path& path) {
  std::string text = io::read_file(path);
  return parse_jsonl(text, path.string());
}

}  // namespace llmstudio::data
