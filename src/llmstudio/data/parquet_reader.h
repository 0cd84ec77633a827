// Parquet reading into a Table through the Arrow C++ libraries of the pip pyarrow wheel (CMake option
// LLMS_WITH_PARQUET, on when .venv has pyarrow). Every column is rendered as text the way pandas' astype(str)
// shows it (what H2O LLM Studio trains on): strings as they are, integers in decimal, floats like Python's repr,
// booleans "True"/"False", dictionary columns decoded, other types by Arrow's ToString; nulls stay null. Binary
// columns must hold UTF-8. Built without Parquet support, read_parquet throws an error saying how to enable it.
#pragma once

#include <filesystem>

#include "llmstudio/data/table.h"

namespace llmstudio::data {

// Whether this build can read Parquet files.
bool parquet_supported();

Table read_parquet(const std::filesystem::path& path);

}  // namespace llmstudio::data
