// RFC 4180 CSV parser (see csv_reader.h for the accepted dialect).
#include "llmstudio/data/csv_reader.h"

#include <cstdio>
#include <vector>

#include "llmstudio/core/error.h"
#include "llmstudio/io/atomic_file.h"

namespace llmstudio::data {
namespace {

std::size_t line_of(std::string_view text, std::size_t offset) {
  std::size_t line = 1;
  for (std::size_t i = 0; i < offset && i < text.size(); ++i)
    if (text[i] == '\n') ++line;
  return line;
}

// Names as pandas makes them: "" -> "Unnamed: <i>", repeats -> "name.1", "name.2", ... (dedup_column_names).
std::vector<std::string> header_names(std::vector<Cell> cells, const std::string& source) {
  check_column_count(cells.size(), source);
  std::vector<std::string> names;
  std::vector<std::size_t> unnamed;
  names.reserve(cells.size());
  for (std::size_t i = 0; i < cells.size(); ++i) {
    if (!cells[i]) unnamed.push_back(i);
    names.push_back(cells[i] ? std::move(*cells[i]) : "Unnamed: " + std::to_string(i));
  }
  return dedup_column_names(std::move(names), unnamed);
}

class CsvParser {
 public:
  CsvParser(std::string_view text, const std::string& source) : text_(text), source_(source) {}

  // Parses the record starting at pos_; returns false at end of input. `line` is the record's first line.
  bool next_record(std::vector<Cell>& cells, std::size_t& line) {
    cells.clear();
    // skip blank lines (pandas' skip_blank_lines)
    while (pos_ < text_.size() && (text_[pos_] == '\n' || (text_[pos_] == '\r' && peek(1) == '\n'))) {
      pos_ += text_[pos_] == '\r' ? 2 : 1;
      ++line_;
    }
    if (pos_ >= text_.size()) return false;
    line = line_;
    for (;;) {
      bool end_of_record = false;
      cells.push_back(parse_field(end_of_record));
      if (end_of_record) return true;
    }
  }

 private:
  char peek(std::size_t ahead) const { return pos_ + ahead < text_.size() ? text_[pos_ + ahead] : '\0'; }

  // Reads one field and the separator after it; sets end_of_record at a line end or the end of input.
  Cell parse_field(bool& end_of_record) {
    std::string value;
    if (pos_ < text_.size() && text_[pos_] == '"') {
      std::size_t open_line = line_;
      ++pos_;
      for (;;) {
        if (pos_ >= text_.size())
          fail(source_, ": line ", open_line, ": quoted field is not closed before the end of the file",
               "\n  hint: a field that starts with \" must end with \"; a quote inside it is written \"\"");
        char c = text_[pos_];
        if (c == '"') {
          if (peek(1) == '"') {
            value += '"';
            pos_ += 2;
            continue;
          }
          ++pos_;
          break;
        }
        if (c == '\n') ++line_;
        value += c;
        ++pos_;
      }
      // after the closing quote: a delimiter, a line end or the end of input
      if (pos_ >= text_.size()) {
        end_of_record = true;
      } else if (text_[pos_] == ',') {
        ++pos_;
      } else if (text_[pos_] == '\n' || (text_[pos_] == '\r' && peek(1) == '\n')) {
        pos_ += text_[pos_] == '\r' ? 2 : 1;
        ++line_;
        end_of_record = true;
      } else {
        fail(source_, ": line ", line_, ": unexpected character '", std::string(1, text_[pos_]),
             "' after the closing quote of a field (expected ',' or a line end)",
             "\n  hint: quotes inside a quoted field must be doubled (\"\")");
      }
    } else {
      std::size_t start = pos_;
      while (pos_ < text_.size() && text_[pos_] != ',' && text_[pos_] != '\n') ++pos_;
      std::size_t end = pos_;
      if (pos_ >= text_.size()) {
        end_of_record = true;
      } else if (text_[pos_] == ',') {
        ++pos_;
      } else {  // '\n'
        ++pos_;
        ++line_;
        end_of_record = true;
      }
      if (end_of_record && end > start && text_[end - 1] == '\r') --end;  // CRLF
      value.assign(text_.substr(start, end - start));
    }
    if (value.empty()) return std::nullopt;
    return value;
  }

  std::string_view text_;
  const std::string& source_;
  std::size_t pos_ = 0;
  std::size_t line_ = 1;
};

}  // namespace

Table parse_csv(std::string_view text, const std::string& source) {
  if (auto bad = find_invalid_utf8(text)) {
    std::size_t line = line_of(text, *bad);
    std::size_t line_start = text.rfind('\n', *bad == 0 ? 0 : *bad - 1);
    line_start = (line_start == std::string_view::npos || *bad == 0) ? 0 : line_start + 1;
    char hex[8];
    std::snprintf(hex, sizeof(hex), "0x%02X", static_cast<unsigned char>(text[*bad]));
    fail(source, ": not valid UTF-8 at line ", line, ", byte offset ", *bad, " (column byte ", *bad - line_start + 1,
         ", byte ", hex, ")\n  hint: re-save the file as UTF-8 (e.g. iconv -f latin1 -t utf-8)");
  }
  if (text.substr(0, 3) == "\xEF\xBB\xBF") text.remove_prefix(3);
  if (text.find_first_not_of(" \t\r\n") == std::string_view::npos)
    fail(source, ": empty file (no header row)\n  hint: the first line must name the columns, e.g. instruction,output");

  CsvParser parser(text, source);
  std::vector<Cell> cells;
  std::size_t line = 0;
  parser.next_record(cells, line);
  Table table(header_names(std::move(cells), source), source);
  const std::size_t width = table.num_columns();
  while (parser.next_record(cells, line)) {
    if (cells.size() != width)
      fail(source, ": line ", line, ": expected ", width, " fields as in the header, found ", cells.size(),
           "\n  hint: a field containing commas, quotes or newlines must be enclosed in double quotes");
    table.add_row(std::move(cells));
    cells = {};
  }
  return table;
}

Table read_csv(const std::filesystem::path& path) {
  std::string text = io::read_file(path);
  return parse_csv(text, path.string());
}

}  // namespace llmstudio::data
