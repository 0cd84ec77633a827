// Batch prediction files: prompts in (CSV / JSONL / Parquet with a `prompt` column and an optional `system`
// column, read by data::read_dataset) and predictions out (JSONL or CSV by extension, one row per prompt with
// prompt, system, text, token ids and finish reason), written atomically.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace llmstudio::infer {

struct PromptRow {
  std::string prompt;
  std::string system;  // "" = none
};

struct PredictionRow {
  std::string prompt;
  std::string system;
  std::string text;
  std::vector<std::int64_t> prompt_ids;
  std::vector<std::int64_t> token_ids;
  std::string finish_reason;
};

// Errors name the file and the missing column (listing the columns found). Null prompts are an error
// naming the row; null systems are "".
std::vector<PromptRow> read_prompt_rows(const std::filesystem::path& path);

// .jsonl/.json -> JSON Lines; .csv -> RFC 4180 CSV (token ids as space-separated numbers). Other extensions
// are an Error naming the file.
void write_predictions(const std::filesystem::path& path, const std::vector<PredictionRow>& rows);

// A CSV field, quoted when it holds a comma, quote, CR or LF (quotes doubled).
std::string csv_field(const std::string& s);

}  // namespace llmstudio::infer
