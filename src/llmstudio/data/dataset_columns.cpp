// Column resolution, empty-prompt dropping and conversation grouping (see dataset_columns.h).
#include "llmstudio/data/dataset_columns.h"

#include <algorithm>
#include <numeric>
#include <unordered_map>

#include "llmstudio/core/error.h"

namespace llmstudio::data {
namespace {

const std::string& name_of(const Table& t) {
  static const std::string unnamed = "dataset";
  return t.source().empty() ? unnamed : t.source();
}

// Union-find over row indices.
struct Groups {
  std::vector<std::size_t> parent;
  explicit Groups(std::size_t n) : parent(n) { std::iota(parent.begin(), parent.end(), std::size_t{0}); }
  std::size_t find(std::size_t x) {
    while (parent[x] != x) x = parent[x] = parent[parent[x]];
    return x;
  }
  void unite(std::size_t a, std::size_t b) {
    a = find(a);
    b = find(b);
    if (a != b) parent[std::max(a, b)] = std::min(a, b);
  }
};

}  // namespace

bool is_none_column(const std::string& name) { return name.empty() || name == "None"; }

ResolvedColumns resolve_columns(const Table& table, const ColumnSpec& spec, const std::string& role,
                                std::vector<std::string>& warnings) {
  ResolvedColumns cols;
  const std::string where = role + " data " + name_of(table);
  LLMS_CHECK(!spec.prompt_columns.empty(), "dataset.prompt_column is empty: name at least one prompt column");
  auto require = [&](const std::string& name, const char* key) {
    auto i = table.find_column(name);
    if (!i)
      fail(where, ": column \"", name, "\" (dataset.", key, ") not found; the file has ", table.num_columns(),
           " column(s): ", quoted_list(table.column_names()), "\n  hint: --set dataset.", key, "=<one of these>");
    return *i;
  };
  for (const auto& p : spec.prompt_columns) cols.prompts.push_back(require(p, "prompt_column"));
  cols.answer = require(spec.answer_column, "answer_column");
  if (!is_none_column(spec.system_column)) {
    cols.system = table.find_column(spec.system_column);
    if (!cols.system)
      warnings.push_back(where + ": system column \"" + spec.system_column +
                         "\" (dataset.system_column) not found; training without system prompts (set it to None "
                         "to silence this)");
  }
  if (!is_none_column(spec.parent_id_column)) {
    cols.parent_id = table.find_column(spec.parent_id_column);
    if (!cols.parent_id) {
      warnings.push_back(where + ": parent id column \"" + spec.parent_id_column +
                         "\" (dataset.parent_id_column) not found; every row is its own conversation (set it to "
                         "None to silence this)");
    } else {
      LLMS_CHECK(!is_none_column(spec.id_column), where, ": dataset.parent_id_column is \"", spec.parent_id_column,
                 "\" but dataset.id_column is None; chaining rows needs an id column");
      cols.id = table.find_column(spec.id_column);
      if (!cols.id)
        fail(where, ": id column \"", spec.id_column, "\" (dataset.id_column) not found, but it is needed because the ",
             "parent id column \"", spec.parent_id_column, "\" exists; the file has columns: ",
             quoted_list(table.column_names()),
             "\n  hint: --set dataset.id_column=<column> or --set dataset.parent_id_column=None");
    }
  }
  return cols;
}

std::string prompt_text(const Table& table, const ResolvedColumns& cols, std::size_t row, const std::string& separator) {
  std::string text;
  for (std::size_t k = 0; k < cols.prompts.size(); ++k) {
    if (k) text += separator;
    const Cell& c = table.cell(row, cols.prompts[k]);
    if (c) text += *c;
  }
  return text;
}

std::size_t drop_empty_prompts(Table& table, const ResolvedColumns& cols) {
  std::vector<std::size_t> keep;
  for (std::size_t r = 0; r < table.num_rows(); ++r) {
    bool empty = true;  // all prompt columns null or "" (the joined text would be separators only)
    for (auto c : cols.prompts) {
      const Cell& cell = table.cell(r, c);
      if (cell && !cell->empty()) empty = false;
    }
    if (!empty) keep.push_back(r);
  }
  std::size_t dropped = table.num_rows() - keep.size();
  if (dropped) table = table.select_rows(keep);
  return dropped;
}

Conversations find_conversations(const Table& table, const ResolvedColumns& cols) {
  Conversations out;
  const std::size_t n = table.num_rows();
  if (!cols.chained()) {
    for (std::size_t r = 0; r < n; ++r) out.groups.push_back({r});
    return out;
  }
  const std::string where = name_of(table);
  std::unordered_map<std::string, std::size_t> row_of_id;
  std::vector<std::optional<std::string>> ids(n);
  for (std::size_t r = 0; r < n; ++r) {
    const Cell& c = table.cell(r, *cols.id);
    if (!c || c->empty()) continue;
    ids[r] = canonical_id(*c);
    auto [it, inserted] = row_of_id.emplace(*ids[r], r);
    if (!inserted)
      fail(where, ": duplicate id \"", *c, "\" in column \"", table.column_names()[*cols.id], "\" (data rows ",
           it->second + 1, " and ", r + 1, "); ids must be unique to chain conversations");
  }
  // parent row of each row (n = none)
  std::vector<std::size_t> parent(n, n);
  for (std::size_t r = 0; r < n; ++r) {
    const Cell& c = table.cell(r, *cols.parent_id);
    if (!c || c->empty()) continue;
    std::string pid = canonical_id(*c);
    if (pid.empty() || pid == "None" || pid == "nan") continue;
    auto it = row_of_id.find(pid);
    if (it == row_of_id.end()) {
      ++out.dangling_parent_ids;
      continue;
    }
    if (it->second == r)
      fail(where, ": data row ", r + 1, " (id \"", *ids[r], "\") names itself as its parent in column \"",
           table.column_names()[*cols.parent_id], "\"");
    parent[r] = it->second;
    ++out.chained_rows;
  }
  // cycle detection: walk each chain upwards; 0 = unvisited, 1 = on the current walk, 2 = known to end at a root
  std::vector<uint8_t> state(n, 0);
  for (std::size_t start = 0; start < n; ++start) {
    std::vector<std::size_t> walk;
    std::size_t r = start;
    while (r != n && state[r] == 0) {
      state[r] = 1;
      walk.push_back(r);
      r = parent[r];
    }
    if (r != n && state[r] == 1) {  // came back to a row of this walk: circular chain
      std::string chain;
      auto pos = std::find(walk.begin(), walk.end(), r);
      std::size_t shown = 0;
      for (auto it = pos; it != walk.end() && shown < 10; ++it, ++shown) chain += "\"" + *ids[*it] + "\" -> ";
      chain += "\"" + *ids[r] + "\"";
      fail(where, ": circular parent chain (", walk.end() - pos, " rows): ", chain,
           "; every conversation must start at a row without a parent id");
    }
    for (auto w : walk) state[w] = 2;
  }
  Groups g(n);
  for (std::size_t r = 0; r < n; ++r)
    if (parent[r] != n) g.unite(r, parent[r]);
  std::unordered_map<std::size_t, std::size_t> group_of_root;
  for (std::size_t r = 0; r < n; ++r) {
    auto [it, inserted] = group_of_root.emplace(g.find(r), out.groups.size());
    if (inserted) out.groups.emplace_back();
    out.groups[it->second].push_back(r);
  }
  return out;
}

std::vector<tokenizer::ConversationRow> to_conversation_rows(const Table& table, const ColumnSpec& spec) {
  std::vector<std::string> warnings;
  ResolvedColumns cols = resolve_columns(table, spec, "", warnings);
  const std::string sep = tokenizer::decode_marker(spec.prompt_column_separator);
  std::vector<tokenizer::ConversationRow> rows(table.num_rows());
  for (std::size_t r = 0; r < table.num_rows(); ++r) {
    auto& row = rows[r];
    row.prompt = prompt_text(table, cols, r, sep);
    if (const Cell& a = table.cell(r, cols.answer)) row.answer = *a;
    if (cols.system)
      if (const Cell& s = table.cell(r, *cols.system)) row.system = *s;
    if (cols.chained()) {
      if (const Cell& id = table.cell(r, *cols.id); id && !id->empty()) row.id = canonical_id(*id);
      if (const Cell& p = table.cell(r, *cols.parent_id); p && !p->empty()) {
        std::string pid = canonical_id(*p);
        if (pid != "None" && pid != "nan" && !pid.empty()) row.parent_id = pid;
      }
    }
  }
  return rows;
}

}  // namespace llmstudio::data
