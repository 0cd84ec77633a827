// Inspection of a model folder or a .safetensors file without loading weights: architecture, parameter
// count, dtypes, memory per dtype, tensor list. Validates the files (the same checks as loading).
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "llmstudio/model/model_config.h"

namespace llmstudio::model {

struct TensorSummary {
  std::string name;
  std::string dtype;  // safetensors name: F32, BF16, ...
  std::vector<std::int64_t> shape;
  std::uint64_t bytes = 0;
  std::string file;  // shard file name
};

struct ModelInfo {
  std::filesystem::path path;
  std::optional<ModelConfig> config;  // absent for a bare .safetensors file
  std::vector<TensorSummary> tensors;
  std::map<std::string, std::uint64_t> dtype_counts;  // dtype -> parameters stored in it
  std::uint64_t parameter_count = 0;                   // elements stored in the files
  std::uint64_t file_bytes = 0;                        // tensor data bytes
  std::vector<std::string> files;
  std::vector<std::string> unexpected;                 // tensors the architecture does not use
};

// Throws llmstudio::Error naming the file and the defect (missing/mis-shaped tensors, malformed files).
ModelInfo inspect_model(const std::filesystem::path& path);

// Memory the weights need in a dtype (bytes), e.g. for "float32", "bfloat16".
std::uint64_t weight_memory_bytes(const ModelInfo& info, const std::string& dtype);

nlohmann::json to_json(const ModelInfo& info, bool with_tensors);
std::string format_info(const ModelInfo& info, bool with_tensors);

}  // namespace llmstudio::model
