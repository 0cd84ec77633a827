// Table storage and the small text helpers shared by the dataset readers.
#include "llmstudio/data/table.h"

#include <cctype>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>

#include "llmstudio/core/error.h"

namespace llmstudio::data {

Table::Table(std::vector<std::string> column_names, std::string source)
    : names_(std::move(column_names)), columns_(names_.size()), source_(std::move(source)) {
  check_column_count(names_.size(), source_.empty() ? "table" : source_);
  index_.reserve(names_.size());
  for (std::size_t i = 0; i < names_.size(); ++i)
    LLMS_CHECK(index_.emplace(names_[i], i).second, source_.empty() ? "table" : source_,
               ": duplicate column name \"", names_[i], "\"");
}

std::optional<std::size_t> Table::find_column(std::string_view name) const {
  auto it = index_.find(std::string(name));
  if (it == index_.end()) return std::nullopt;
  return it->second;
}

std::size_t Table::column_index(std::string_view name, std::string_view what) const {
  auto i = find_column(name);
  if (!i)
    fail(source_.empty() ? "table" : source_, ": ", what, " \"", name, "\" not found; the file has ",
         names_.size(), " column(s): ", quoted_list(names_),
         "\n  hint: set the column name in the experiment config (dataset section) to one of these");
  return *i;
}

void Table::add_row(std::vector<Cell> cells) {
  LLMS_CHECK(cells.size() == names_.size(), source_.empty() ? "table" : source_, ": row ", rows_ + 1, " has ",
             cells.size(), " cells, expected ", names_.size());
  for (std::size_t c = 0; c < cells.size(); ++c) columns_[c].push_back(std::move(cells[c]));
  ++rows_;
}

std::size_t Table::add_column(std::string name) {
  LLMS_CHECK(!find_column(name), source_.empty() ? "table" : source_, ": duplicate column name \"", name, "\"");
  check_column_count(names_.size() + 1, source_.empty() ? "table" : source_);
  index_.emplace(name, names_.size());
  names_.push_back(std::move(name));
  columns_.emplace_back(rows_);
  return names_.size() - 1;
}

Table Table::select_rows(const std::vector<std::size_t>& rows) const {
  Table out(names_, source_);
  for (std::size_t c = 0; c < names_.size(); ++c) {
    out.columns_[c].reserve(rows.size());
    for (std::size_t r : rows) {
      LLMS_CHECK(r < rows_, "row index ", r, " out of range (", rows_, " rows)");
      out.columns_[c].push_back(columns_[c][r]);
    }
  }
  out.rows_ = rows.size();
  return out;
}

void Table::append(const Table& other) {
  for (const auto& name : other.names_)
    if (!find_column(name)) add_column(name);
  for (std::size_t c = 0; c < names_.size(); ++c) {
    auto oc = other.find_column(names_[c]);
    for (std::size_t r = 0; r < other.rows_; ++r) columns_[c].push_back(oc ? other.columns_[*oc][r] : Cell{});
  }
  rows_ += other.rows_;
}

void check_column_count(std::size_t count, const std::string& source) {
  if (count > kMaxColumns)
    fail(source, ": ", count, " columns, more than the limit of ", kMaxColumns,
         "\n  hint: a dataset needs a few text columns (prompt, answer, ...); drop the others before importing");
}

std::vector<std::string> dedup_column_names(std::vector<std::string> names, const std::vector<std::size_t>& unnamed) {
  // Named columns first, then the unnamed ones, as pandas does so that given names are kept.
  std::vector<char> is_unnamed(names.size(), 0);
  for (std::size_t i : unnamed) is_unnamed.at(i) = 1;
  std::vector<std::size_t> order;
  order.reserve(names.size());
  for (std::size_t i = 0; i < names.size(); ++i)
    if (!is_unnamed[i]) order.push_back(i);
  order.insert(order.end(), unnamed.begin(), unnamed.end());

  std::unordered_map<std::string, std::size_t> present;  // the names as they are now -> how many columns have it
  present.reserve(names.size() * 2);
  for (const auto& n : names) ++present[n];
  std::unordered_map<std::string, std::size_t> counts;  // pandas' counts: next suffix to try per name
  counts.reserve(names.size() * 2);
  const auto count_of = [&counts](const std::string& n) {
    auto it = counts.find(n);
    return it == counts.end() ? std::size_t{0} : it->second;
  };
  // Each probe either takes a free name or skips one that is in the header, and a name's counter only grows:
  // linear overall.
  for (std::size_t i : order) {
    const std::string old_name = names[i];
    std::string name = old_name;
    std::size_t cur = count_of(name);
    while (cur > 0) {
      counts[old_name] = cur + 1;
      name = old_name + "." + std::to_string(cur);
      auto p = present.find(name);
      cur = (p != present.end() && p->second > 0) ? cur + 1 : count_of(name);
    }
    if (name != old_name) {
      --present[old_name];
      ++present[name];
      names[i] = name;
    }
    counts[name] = cur + 1;
  }
  return names;
}

std::string quoted_list(const std::vector<std::string>& names, std::size_t limit) {
  std::string out;
  for (std::size_t i = 0; i < names.size(); ++i) {
    if (i == limit) {
      out += ", ...";
      break;
    }
    if (i) out += ", ";
    out += '"' + names[i] + '"';
  }
  return out.empty() ? "(none)" : out;
}

std::string format_python_float(double v) {
  if (std::isnan(v)) return "nan";
  if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
  if (v == 0) return std::signbit(v) ? "-0.0" : "0.0";
  char buf[64];
  auto res = std::to_chars(buf, buf + sizeof(buf), v, std::chars_format::scientific);
  std::string s(buf, res.ptr);  // "-d.ddde+XX", shortest digits that round-trip
  std::string sign;
  if (s[0] == '-') {
    sign = "-";
    s.erase(0, 1);
  }
  auto e = s.find('e');
  int exp = std::atoi(s.c_str() + e + 1);
  std::string digits = s.substr(0, e);
  if (digits.size() > 1) digits.erase(1, 1);  // drop the '.'
  if (exp < -4 || exp >= 16) {  // Python's repr switches to exponent notation here
    std::string out = sign + digits.substr(0, 1);
    if (digits.size() > 1) out += "." + digits.substr(1);
    char eb[16];
    std::snprintf(eb, sizeof(eb), "e%c%02d", exp < 0 ? '-' : '+', std::abs(exp));
    return out + eb;
  }
  std::string out;
  if (exp < 0) {
    out = "0." + std::string(static_cast<std::size_t>(-exp - 1), '0') + digits;
  } else if (static_cast<std::size_t>(exp) + 1 >= digits.size()) {
    out = digits + std::string(static_cast<std::size_t>(exp) + 1 - digits.size(), '0') + ".0";
  } else {
    out = digits.substr(0, static_cast<std::size_t>(exp) + 1) + "." + digits.substr(static_cast<std::size_t>(exp) + 1);
  }
  return sign + out;
}

std::optional<std::size_t> find_invalid_utf8(std::string_view text) {
  const auto* p = reinterpret_cast<const unsigned char*>(text.data());
  std::size_t n = text.size(), i = 0;
  while (i < n) {
    unsigned char c = p[i];
    if (c < 0x80) {
      ++i;
      continue;
    }
    std::size_t len;
    uint32_t cp;
    if ((c & 0xE0) == 0xC0) {
      len = 2;
      cp = c & 0x1F;
    } else if ((c & 0xF0) == 0xE0) {
      len = 3;
      cp = c & 0x0F;
    } else if ((c & 0xF8) == 0xF0) {
      len = 4;
      cp = c & 0x07;
    } else {
      return i;
    }
    if (i + len > n) return i;
    for (std::size_t k = 1; k < len; ++k) {
      if ((p[i + k] & 0xC0) != 0x80) return i;
      cp = (cp << 6) | (p[i + k] & 0x3F);
    }
    bool overlong = (len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000);
    if (overlong || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return i;
    i += len;
  }
  return std::nullopt;
}

std::string canonical_id(std::string_view id) {
  while (!id.empty() && (id.front() == ' ' || id.front() == '\t')) id.remove_prefix(1);
  while (!id.empty() && (id.back() == ' ' || id.back() == '\t')) id.remove_suffix(1);
  // "12.0" / "12.00" -> "12" (pandas writes int ids as floats when the column has missing values)
  auto dot = id.find('.');
  if (dot != std::string_view::npos && dot > 0) {
    std::string_view head = id.substr(0, dot), tail = id.substr(dot + 1);
    bool head_int = true, tail_zero = !tail.empty();
    for (std::size_t i = 0; i < head.size(); ++i)
      if (!(std::isdigit(static_cast<unsigned char>(head[i])) || (i == 0 && head[i] == '-' && head.size() > 1)))
        head_int = false;
    for (char ch : tail)
      if (ch != '0') tail_zero = false;
    if (head_int && tail_zero) return std::string(head);
  }
  return std::string(id);
}

}  // namespace llmstudio::data
