// Reads a dataset file into a Table, choosing the reader by extension: .csv (RFC 4180), .jsonl / .json (JSON
// Lines, or one JSON array of records), .parquet / .pq (Arrow). Other extensions are an error that lists the
// supported ones. H2O LLM Studio's own formats are CSV and Parquet; JSONL is an addition.
#pragma once

#include <filesystem>
#include <string>

#include "llmstudio/data/table.h"

namespace llmstudio::data {

enum class DatasetFormat { Csv, Jsonl, Parquet };

// The format of `path` by its extension (case-insensitive); throws llmstudio::Error for others.
DatasetFormat dataset_format(const std::filesystem::path& path);
const char* to_string(DatasetFormat f);

// Reads the whole file. Throws llmstudio::Error naming the file for a missing file, an unsupported extension and
// every format error of the readers.
Table read_dataset(const std::filesystem::path& path);

}  // namespace llmstudio::data
