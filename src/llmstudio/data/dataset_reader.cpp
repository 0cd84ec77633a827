// Dataset file dispatch by extension (see dataset_reader.h).
#include "llmstudio/data/dataset_reader.h"

#include <algorithm>
#include <cctype>

#include "llmstudio/core/error.h"
#include "llmstudio/data/csv_reader.h"
#include "llmstudio/data/jsonl_reader.h"
#include "llmstudio/data/parquet_reader.h"

namespace llmstudio::data {

DatasetFormat dataset_format(const std::filesystem::path& path) {
  std::string ext = path.extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return std::tolower(c); });
  if (ext == ".csv") return DatasetFormat::Csv;
  if (ext == ".jsonl" || ext == ".json") return DatasetFormat::Jsonl;
  if (ext == ".parquet" || ext == ".pq") return DatasetFormat::Parquet;
  fail(path.string(), ": unsupported dataset file type \"", ext.empty() ? "(no extension)" : ext,
       "\"; supported: .csv, .jsonl, .json (JSON Lines), .parquet, .pq");
}

const char* to_string(DatasetFormat f) {
  switch (f) {
    case DatasetFormat::Csv:
      return "csv";
    case DatasetFormat::Jsonl:
      return "jsonl";
    case DatasetFormat::Parquet:
      return "parquet";
  }
  return "?";
}

Table read_dataset(const std::filesystem::path& path) {
  DatasetFormat format = dataset_format(path);
  std::error_code ec;
  if (!std::filesystem::exists(path, ec))
    fail(path.string(), ": dataset file not found (working directory: ", std::filesystem::current_path().string(), ")");
  LLMS_CHECK(!std::filesystem::is_directory(path, ec), path.string(), ": is a folder, expected a dataset file");
  switch (format) {
    case DatasetFormat::Csv:
      return read_csv(path);
    case DatasetFormat::Jsonl:
      return read_jsonl(path);
    case DatasetFormat::Parquet:
      return read_parquet(path);
  }
  fail(path.string(), ": unsupported dataset format");
}

}  // namespace llmstudio::data
