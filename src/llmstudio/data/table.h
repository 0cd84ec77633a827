// An in-memory table of text columns with nullable cells: what every dataset reader (CSV, JSONL, Parquet) returns
// and what the split/column checks work on. Cells keep the file's text exactly (numbers from typed formats are
// rendered like Python's str(), so tables match what pandas' astype(str) gives H2O LLM Studio).
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace llmstudio::data {

using Cell = std::optional<std::string>;  // nullopt = missing (empty CSV cell, JSON null, Parquet null)

// The most columns a table (a dataset file) may have: wider headers are refused before any work per column.
inline constexpr std::size_t kMaxColumns = 10000;

class Table {
 public:
  Table() = default;
  // Column names must be unique (readers rename duplicates the way pandas does: "a", "a.1", ...) and at most
  // kMaxColumns.
  explicit Table(std::vector<std::string> column_names, std::string source = "");

  const std::vector<std::string>& column_names() const { return names_; }
  std::size_t num_columns() const { return names_.size(); }
  std::size_t num_rows() const { return rows_; }
  // Where the table came from (a file path), used in error messages.
  const std::string& source() const { return source_; }
  void set_source(std::string source) { source_ = std::move(source); }

  std::optional<std::size_t> find_column(std::string_view name) const;
  // Like find_column, but throws llmstudio::Error naming `what`, the missing column and the columns found.
  std::size_t column_index(std::string_view name, std::string_view what = "column") const;

  const Cell& cell(std::size_t row, std::size_t column) const { return columns_[column][row]; }
  const std::vector<Cell>& column(std::size_t column) const { return columns_[column]; }

  // Appends a row; throws if its width differs from the number of columns.
  void add_row(std::vector<Cell> cells);
  // Appends a column filled with nulls (JSONL readers discover columns as they go); throws for a name already
  // present or past kMaxColumns.
  std::size_t add_column(std::string name);
  void set_cell(std::size_t row, std::size_t column, Cell value) { columns_[column][row] = std::move(value); }

  // A new table holding the given rows in the given order.
  Table select_rows(const std::vector<std::size_t>& rows) const;
  // Appends the rows of `other`, matching columns by name; columns missing on either side become null.
  void append(const Table& other);

 private:
  std::vector<std::string> names_;
  std::unordered_map<std::string, std::size_t> index_;  // name -> column
  std::vector<std::vector<Cell>> columns_;  // column-major
  std::size_t rows_ = 0;
  std::string source_;
};

// Throws llmstudio::Error naming `source` if a file has more than kMaxColumns columns (found vs limit).
void check_column_count(std::size_t count, const std::string& source);

// Unique column names the way pandas' read_csv makes them (pandas.io.common.mangle_dupe_names): a repeated
// name becomes "name.1", "name.2", ..., skipping a suffixed name that is in the header already (["a", "a", "a.1"]
// -> ["a", "a.2", "a.1"]); the columns at the `unnamed` positions (empty header cells, "Unnamed: <i>") are renamed
// after all the others. Linear in the number of names (hash maps).
std::vector<std::string> dedup_column_names(std::vector<std::string> names,
                                            const std::vector<std::size_t>& unnamed = {});

// A comma-separated list of names, for error messages: "a", "b", "c" (at most `limit` names, then "...").
std::string quoted_list(const std::vector<std::string>& names, std::size_t limit = 50);

// Python's repr/str of a float (shortest round-trip digits, "1.0", "1e-05", "inf", "nan"), as pandas renders
// float cells with astype(str).
std::string format_python_float(double v);

// Checks that `text` is valid UTF-8. Returns the byte offset of the first invalid sequence, or nullopt.
std::optional<std::size_t> find_invalid_utf8(std::string_view text);

// Canonical form of an id / parent id for matching: trims spaces and turns integral numbers written as floats
// ("12.0", as pandas writes an int column that has missing values) into integers ("12").
std::string canonical_id(std::string_view id);

}  // namespace llmstudio::data
