// JSON Lines parser (see jsonl_reader.h).
#include "llmstudio/data/jsonl_reader.h"

#include <nlohmann/json.hpp>

#include <unordered_map>

#include "llmstudio/core/error.h"
#include "llmstudio/io/atomic_file.h"
#include "llmstudio/io/json_text.h"

namespace llmstudio::data {
namespace {

using Sax = nlohmann::json_sax<nlohmann::json>;

// Rows of a table: cells are set by key as a record's members arrive; a new key adds a column.
class Builder {
 public:
  explicit Builder(const std::string& source) : table_({}, source) {}

  void begin_row() { cells_.assign(table_.num_columns(), std::nullopt); }
  void set(const std::string& key, Cell cell) {  // a repeated key: the last value, at the first one's column
    auto it = index_.find(key);
    std::size_t col;
    if (it == index_.end()) {
      col = table_.add_column(key);
      index_.emplace(key, col);
      cells_.emplace_back();
    } else {
      col = it->second;
    }
    cells_[col] = std::move(cell);
  }
  void end_row() { table_.add_row(std::move(cells_)); }
  Table take() { return std::move(table_); }

 private:
  Table table_;
  std::unordered_map<std::string, std::size_t> index_;
  std::vector<Cell> cells_;
};

// Records from nlohmann's SAX events, in linear time and without recursion (ordered_json would find each key by
// linear search: an object of n keys cost n^2/2 comparisons). A record is the whole value (a JSON Lines line,
// record_level 1) or an element of the top-level array (record_level 2). Scalars become cells as pandas'
// astype(str) shows them: strings as they are, integers in decimal, floats like Python's repr (1.0, 1e-05),
// booleans "True"/"False", null a null cell; arrays and objects become compact JSON in file order.
class RecordSax final : public Sax {
 public:
  RecordSax(Builder& builder, int record_level) : builder_(builder), record_level_(record_level) {}

  // The first record that is not an object ("a JSON number", its index), or "".
  const std::string& wrong_type() const { return wrong_type_; }
  std::size_t wrong_index() const { return wrong_index_; }

  bool null() override { return scalar(std::nullopt, "null", "null"); }
  bool boolean(bool v) override { return scalar(v ? "True" : "False", v ? "true" : "false", "boolean"); }
  bool number_integer(number_integer_t v) override {
    const std::string s = std::to_string(v);
    return scalar(s, s, "number");
  }
  bool number_unsigned(number_unsigned_t v) override {
    const std::string s = std::to_string(v);
    return scalar(s, s, "number");
  }
  bool number_float(number_float_t v, const string_t&) override {
    return scalar(format_python_float(v), nlohmann::json(v).dump(), "number");
  }
  bool string(string_t& v) override {
    if (depth_ + 1 == record_level_ + 1 && in_object_) return member(std::move(v));
    return scalar(std::nullopt, nlohmann::json(v).dump(), "string");
  }
  bool binary(binary_t&) override { return true; }  // not produced by the JSON parser
  bool start_object(std::size_t) override { return open('{', true); }
  bool end_object() override { return close('}'); }
  bool start_array(std::size_t) override { return open('[', false); }
  bool end_array() override { return close(']'); }
  bool key(string_t& k) override {
    if (!in_object_) return true;
    if (depth_ == record_level_) {
      key_ = std::move(k);
    } else {
      separator();
      text_ += nlohmann::json(k).dump();
      text_ += ':';
      after_key_ = true;
    }
    return true;
  }
  bool parse_error(std::size_t, const std::string&, const nlohmann::detail::exception&) override { return false; }

 private:
  // A value at nesting level depth_ + 1 (the records array is level 1 in the array layout).
  bool scalar(Cell cell, const std::string& json_text, const char* type) {
    const int level = depth_ + 1;
    if (level == record_level_) {
      ++records_;
      return not_an_object(type);
    }
    if (level < record_level_ || !in_object_) return true;
    if (level == record_level_ + 1) return member(std::move(cell));
    separator();
    text_ += json_text;
    return true;
  }
  bool member(Cell cell) {
    builder_.set(key_, std::move(cell));
    return true;
  }
  bool open(char bracket, bool object) {
    const int level = ++depth_;
    if (level < record_level_) return true;
    if (level == record_level_) {
      ++records_;
      if (!object) return not_an_object("array");
      in_object_ = true;
      builder_.begin_row();
      return true;
    }
    if (!in_object_) return true;
    if (level == record_level_ + 1) {
      text_.clear();
      need_comma_.clear();
    } else {
      separator();
    }
    text_ += bracket;
    need_comma_.push_back(false);
    return true;
  }
  bool close(char bracket) {
    const int level = depth_--;
    if (level < record_level_) return true;
    if (level == record_level_) {
      if (in_object_) builder_.end_row();
      in_object_ = false;
      return true;
    }
    if (!in_object_) return true;
    text_ += bracket;
    need_comma_.pop_back();
    if (level == record_level_ + 1) builder_.set(key_, text_);
    return true;
  }
  void separator() {
    if (after_key_) {
      after_key_ = false;
    } else if (need_comma_.back()) {
      text_ += ',';
    } else {
      need_comma_.back() = true;
    }
  }
  bool not_an_object(const char* type) {
    if (wrong_type_.empty()) {
      wrong_type_ = std::string("a JSON ") + type;
      wrong_index_ = records_ - 1;
    }
    return true;
  }

  Builder& builder_;
  const int record_level_;
  int depth_ = 0;               // open arrays/objects
  bool in_object_ = false;      // inside a record that is an object
  std::size_t records_ = 0;     // records started
  std::string key_;             // the current member's key
  std::string text_;            // compact JSON of the current nested member value
  std::vector<bool> need_comma_;  // per open nested container: a member was written
  bool after_key_ = false;
  std::string wrong_type_;
  std::size_t wrong_index_ = 0;
};

// One JSON value through `sax` with the nesting limit; a syntax error gets `hint`.
void parse_records(std::string_view text, const std::string& where, RecordSax& sax, const char* hint) {
  try {
    io::sax_parse_json(text, where, sax);
  } catch (const Error& e) {
    if (std::string_view(e.what()).find(": not valid JSON") == std::string_view::npos) throw;
    fail(e.what(), hint);
  }
}

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
    RecordSax sax(builder, 2);
    parse_records(text, source, sax, "\n  hint: a file that starts with '[' is read as one JSON array of objects");
    LLMS_CHECK(sax.wrong_type().empty(), source, ": array element ", sax.wrong_index(), " is ", sax.wrong_type(),
               ", expected an object with one key per column");
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
    const std::string where = source + ": line " + std::to_string(line);
    RecordSax sax(builder, 1);
    parse_records(raw, where, sax,
                  "\n  hint: JSON Lines needs one complete JSON object per line (newlines inside strings are written "
                  "\\n)");
    LLMS_CHECK(sax.wrong_type().empty(), where, ": expected a JSON object, found ", sax.wrong_type());
  }
  return builder.take();
}

Table read_jsonl(const std::filesystem::path& path) {
  std::string text = io::read_file(path);
  return parse_jsonl(text, path.string());
}

}  // namespace llmstudio::data
