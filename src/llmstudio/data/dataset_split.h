// Train/validation datasets from H2O LLM Studio's dataset settings: reading the train (and custom validation)
// file, the column checks of dataset_columns.h, the validation split and data_sample sub-sampling.
//
// As in H2O (llm_studio/src/utils/data_utils.py): validation_strategy "automatic" holds out
// ceil(validation_size * groups) groups, where a group is one conversation (all rows linked through parent ids,
// so a conversation never straddles the split) or, without chaining, one row; "custom" reads
// validation_dataframe. Then data_sample < 1 keeps that fraction of conversations (chained) or
// max(10, fraction * rows) rows, in the splits named by data_sample_choice; train_validation_data appends the
// validation rows to the training rows. H2O's seeds are fixed (1337 for the split, 7331 for sampling); ours
// are too, and settable. The shuffles are our own (mt19937_64 Fisher-Yates), so which rows land in validation
// differs from H2O's (sklearn's) choice, but sizes match and results are identical on every platform.
// Rows keep their file order within each split.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "llmstudio/data/dataset_columns.h"
#include "llmstudio/data/table.h"

namespace llmstudio::data {

struct DatasetSpec {
  std::string train_dataframe;
  std::string validation_strategy = "automatic";  // "automatic" | "custom"
  std::string validation_dataframe;               // custom only
  double validation_size = 0.01;                  // automatic only, in (0, 1)
  double data_sample = 1.0;                       // in (0, 1]
  bool sample_train = true;                       // data_sample_choice contains "Train"
  bool sample_validation = true;                  // data_sample_choice contains "Validation"
  bool train_validation_data = false;             // train on train + validation
  ColumnSpec columns;
  uint64_t split_seed = 1337;
  uint64_t sample_seed = 7331;
};

struct DataReport {
  std::size_t train_file_rows = 0;
  std::size_t validation_file_rows = 0;  // custom strategy
  std::size_t dropped_empty_prompts = 0;
  std::size_t empty_answers = 0;
  std::size_t dangling_parent_ids = 0;
  std::size_t conversations = 0;  // groups in the train file (automatic) used by the split
  std::vector<std::string> warnings;
};

struct PreparedDatasets {
  Table train;
  Table validation;
  DataReport report;
};

// Reads, checks, splits and samples. Relative paths are taken from `base_dir` (empty = the working folder).
// Throws llmstudio::Error for unreadable files, missing columns, broken chains, an invalid strategy or a
// dataset too small to split.
PreparedDatasets prepare_datasets(const DatasetSpec& spec, const std::filesystem::path& base_dir = {});

// The split on its own: indices of validation groups chosen from `groups` (ceil(fraction * groups), at least
// one, leaving at least one for training). Returns {train rows, validation rows}, each ascending.
std::pair<std::vector<std::size_t>, std::vector<std::size_t>> split_groups(
    const std::vector<std::vector<std::size_t>>& groups, double validation_fraction, uint64_t seed);

// data_sample on its own: the rows to keep (ascending). by_group: keep floor(fraction * groups) groups (at least
// one); otherwise keep min(rows, max(10, floor(fraction * rows))) rows, as H2O does.
std::vector<std::size_t> sample_groups(const std::vector<std::vector<std::size_t>>& groups, double fraction,
                                       uint64_t seed, bool by_group);

}  // namespace llmstudio::data
