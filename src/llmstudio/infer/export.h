// Export of a model folder (optionally with a PEFT LoRA adapter) as a Hugging Face folder that transformers'
// AutoModelForCausalLM.from_pretrained loads: config.json (dtype updated), model.safetensors sharded above a
// size limit (model-0000X-of-0000N.safetensors + index), tokenizer files, generation_config.json and a short
// README.md model card. Or, adapter-only: adapter_config.json + adapter_model.safetensors for PEFT.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

namespace llmstudio::infer {

enum class ExportMode {
  merged,        // base weights with the adapter (if any) folded in
  adapter_only,  // the PEFT adapter alone (needs an adapter)
};

struct ExportOptions {
  std::filesystem::path model_dir;    // base model folder (config.json + safetensors)
  std::filesystem::path adapter_dir;  // PEFT adapter folder, or empty
  std::filesystem::path out_dir;
  ExportMode mode = ExportMode::merged;
  std::string dtype = "auto";  // auto (the checkpoint's dtype) | float32 | bfloat16 | float16
  std::uint64_t max_shard_bytes = 2'000'000'000;  // transformers' default "2GB"... per shard
  // Canonical folders the model/adapter files may resolve into (symlinks followed; io/confined_files.h), checked
  // before anything is read and again before files are copied; empty = no confinement (the CLI).
  std::vector<std::filesystem::path> confine_roots;
};

struct ExportReport {
  std::vector<std::filesystem::path> files;  // everything written, relative to out_dir
  std::string dtype;                         // dtype of the exported weights
  std::uint64_t tensor_bytes = 0;
  std::size_t shards = 0;                    // 0 for adapter-only
};

// "2GB" (10^9, as transformers), "500MB", "10KB", "1GiB", "4096" (bytes). Error naming the text otherwise.
std::uint64_t parse_size(std::string_view text);

// Writes the folder (created if needed; files written atomically). Errors name the missing file / bad option.
ExportReport export_model(const ExportOptions& options);

}  // namespace llmstudio::infer
