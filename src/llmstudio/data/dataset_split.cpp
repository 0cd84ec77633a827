// Validation split and data_sample sub-sampling (see dataset_split.h).
#include "llmstudio/data/dataset_split.h"

#include <algorithm>
#include <cmath>
#include <random>

#include "llmstudio/core/error.h"
#include "llmstudio/data/dataset_reader.h"

namespace llmstudio::data {
namespace {

// Fisher-Yates with mt19937_64 (fully specified, unlike std::shuffle's use of distributions).
std::vector<std::size_t> shuffled(std::size_t n, uint64_t seed) {
  std::vector<std::size_t> order(n);
  for (std::size_t i = 0; i < n; ++i) order[i] = i;
  std::mt19937_64 rng(seed);
  for (std::size_t i = n; i > 1; --i) std::swap(order[i - 1], order[rng() % i]);
  return order;
}

std::vector<std::size_t> rows_of(const std::vector<std::vector<std::size_t>>& groups,
                                 const std::vector<std::size_t>& chosen) {
  std::vector<std::size_t> rows;
  for (auto g : chosen) rows.insert(rows.end(), groups[g].begin(), groups[g].end());
  std::sort(rows.begin(), rows.end());
  return rows;
}

std::filesystem::path resolve(const std::string& p, const std::filesystem::path& base) {
  std::filesystem::path path(p);
  return (path.is_relative() && !base.empty()) ? base / path : path;
}

// Reads a file and applies the column checks; returns the table (empty-prompt rows removed) and its columns.
Table load_checked(const std::filesystem::path& path, const ColumnSpec& spec, const std::string& role,
                   DataReport& report, ResolvedColumns& cols) {
  Table t = read_dataset(path);
  if (t.num_rows() == 0)
    fail(role, " data ", path.string(), ": the file has a header but no data rows");
  cols = resolve_columns(t, spec, role, report.warnings);
  std::size_t dropped = drop_empty_prompts(t, cols);
  if (dropped) {
    report.dropped_empty_prompts += dropped;
    report.warnings.push_back(role + " data " + path.string() + ": dropped " + std::to_string(dropped) +
                              " row(s) with an empty prompt (columns " + quoted_list(spec.prompt_columns) + ")");
  }
  if (t.num_rows() == 0)
    fail(role, " data ", path.string(), ": no rows left after dropping rows with an empty prompt");
  std::size_t empty_answers = 0;
  for (std::size_t r = 0; r < t.num_rows(); ++r) {
    const Cell& a = t.cell(r, cols.answer);
    if (!a || a->empty()) ++empty_answers;
  }
  if (empty_answers) {
    report.empty_answers += empty_answers;
    report.warnings.push_back(role + " data " + path.string() + ": " + std::to_string(empty_answers) +
                              " row(s) have an empty answer (kept; their answer is \"\")");
  }
  return t;
}

void note_dangling(const Conversations& conv, const std::string& role, const Table& t, DataReport& report) {
  if (!conv.dangling_parent_ids) return;
  report.dangling_parent_ids += conv.dangling_parent_ids;
  report.warnings.push_back(role + " data " + t.source() + ": " + std::to_string(conv.dangling_parent_ids) +
                            " row(s) name a parent id that matches no row; each starts a new conversation");
}

}  // namespace

std::pair<std::vector<std::size_t>, std::vector<std::size_t>> split_groups(
    const std::vector<std::vector<std::size_t>>& groups, double validation_fraction, uint64_t seed) {
  LLMS_CHECK(validation_fraction > 0 && validation_fraction < 1,
             "dataset.validation_size must be in (0, 1), got ", validation_fraction);
  const std::size_t n = groups.size();
  LLMS_CHECK(n >= 2, "cannot make an automatic validation split of ", n,
             " conversation(s): need at least 2\n  hint: add rows or use validation_strategy: custom");
  auto n_val = static_cast<std::size_t>(std::ceil(validation_fraction * static_cast<double>(n) - 1e-9));
  n_val = std::clamp<std::size_t>(n_val, 1, n - 1);
  auto order = shuffled(n, seed);
  std::vector<std::size_t> val(order.begin(), order.begin() + static_cast<std::ptrdiff_t>(n_val));
  std::vector<std::size_t> train(order.begin() + static_cast<std::ptrdiff_t>(n_val), order.end());
  return {rows_of(groups, train), rows_of(groups, val)};
}

std::vector<std::size_t> sample_groups(const std::vector<std::vector<std::size_t>>& groups, double fraction,
                                       uint64_t seed, bool by_group) {
  LLMS_CHECK(fraction > 0 && fraction <= 1, "dataset.data_sample must be in (0, 1], got ", fraction);
  std::vector<std::size_t> all(groups.size());
  for (std::size_t i = 0; i < all.size(); ++i) all[i] = i;
  if (fraction >= 1) return rows_of(groups, all);
  if (by_group) {
    auto k = static_cast<std::size_t>(std::floor(fraction * static_cast<double>(groups.size()) + 1e-9));
    k = std::clamp<std::size_t>(k, std::min<std::size_t>(1, groups.size()), groups.size());
    auto order = shuffled(groups.size(), seed);
    order.resize(k);
    return rows_of(groups, order);
  }
  std::size_t rows = 0;
  for (const auto& g : groups) rows += g.size();
  auto k = static_cast<std::size_t>(std::floor(fraction * static_cast<double>(rows) + 1e-9));
  k = std::min(rows, std::max<std::size_t>(10, k));  // H2O keeps at least 10 rows
  auto flat = rows_of(groups, all);
  auto order = shuffled(flat.size(), seed);
  std::vector<std::size_t> keep;
  for (std::size_t i = 0; i < k; ++i) keep.push_back(flat[order[i]]);
  std::sort(keep.begin(), keep.end());
  return keep;
}

PreparedDatasets prepare_datasets(const DatasetSpec& spec, const std::filesystem::path& base_dir) {
  PreparedDatasets out;
  DataReport& report = out.report;
  LLMS_CHECK(!spec.train_dataframe.empty() && spec.train_dataframe != "None",
             "dataset.train_dataframe is not set\n  hint: --set dataset.train_dataframe=path/to/train.csv");
  ResolvedColumns train_cols, val_cols;
  Table train = load_checked(resolve(spec.train_dataframe, base_dir), spec.columns, "train", report, train_cols);
  report.train_file_rows = train.num_rows() + report.dropped_empty_prompts;
  Conversations train_conv = find_conversations(train, train_cols);
  note_dangling(train_conv, "train", train, report);

  Table val;
  if (spec.validation_strategy == "automatic") {
    report.conversations = train_conv.groups.size();
    auto [tr, va] = split_groups(train_conv.groups, spec.validation_size, spec.split_seed);
    val = train.select_rows(va);
    train = train.select_rows(tr);
  } else if (spec.validation_strategy == "custom") {
    LLMS_CHECK(!spec.validation_dataframe.empty() && spec.validation_dataframe != "None",
               "dataset.validation_strategy is custom but dataset.validation_dataframe is not set",
               "\n  hint: --set dataset.validation_dataframe=path/to/val.csv or dataset.validation_strategy=automatic");
    std::size_t dropped_before = report.dropped_empty_prompts;
    val = load_checked(resolve(spec.validation_dataframe, base_dir), spec.columns, "validation", report, val_cols);
    report.validation_file_rows = val.num_rows() + (report.dropped_empty_prompts - dropped_before);
    note_dangling(find_conversations(val, val_cols), "validation", val, report);
  } else {
    fail("dataset.validation_strategy: invalid value \"", spec.validation_strategy,
         "\"; allowed values: automatic, custom");
  }

  if (spec.data_sample < 1.0) {
    std::vector<std::string> ignore;
    auto sample = [&](Table& t, bool do_it) {
      if (!do_it) return;
      ResolvedColumns cols = resolve_columns(t, spec.columns, "", ignore);
      Conversations conv = find_conversations(t, cols);
      t = t.select_rows(sample_groups(conv.groups, spec.data_sample, spec.sample_seed, cols.chained()));
    };
    sample(train, spec.sample_train);
    sample(val, spec.sample_validation);
  }
  if (spec.train_validation_data) train.append(val);
  LLMS_CHECK(train.num_rows() > 0, "no training rows left after the split and data_sample");
  out.train = std::move(train);
  out.validation = std::move(val);
  return out;
}

}  // namespace llmstudio::data
