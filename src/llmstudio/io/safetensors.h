// Safetensors tensors I/O on libtorch: memory-mapped zero-copy reading of one file or a sharded
// checkpoint (model.safetensors.index.json), and atomic writing of one file or of shards + index.
//
// Reading: the file is mmap'ed read-only once; tensor(name) returns a CPU at::Tensor that views the
// mapping (at::from_blob, the deleter holds the mapping), so `.to(device, dtype)` is the only copy.
// Such tensors are READ-ONLY memory: in-place ops on them crash; clone() or .to() first to mutate.
// Exception: when the data of a tensor is not aligned to its element size (files from other writers),
// tensor() returns an aligned copy instead of a misaligned view. Little-endian hosts only.
#pragma once

#include <ATen/ATen.h>

#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "llmstudio/io/mapped_file.h"
#include "llmstudio/io/safetensors_header.h"

namespace llmstudio::io {

at::ScalarType to_scalar_type(StDtype dtype);  // throws for dtypes torch lacks
StDtype to_st_dtype(at::ScalarType type);       // throws for types safetensors lacks (complex, ...)

// One .safetensors file, mapped and validated at open(); lazy: nothing is materialised until tensor().
class SafetensorsFile {
 public:
  static std::shared_ptr<const SafetensorsFile> open(const std::filesystem::path& path);

  const std::filesystem::path& path() const { return mapping_->path(); }
  const std::map<std::string, std::string>& metadata() const { return header_.metadata; }
  const std::vector<SafetensorsTensorInfo>& tensors() const { return header_.tensors; }  // file order
  std::vector<std::string> names() const;                                                   // file order
  bool contains(std::string_view name) const { return header_.find(name) != nullptr; }
  const SafetensorsTensorInfo& info(std::string_view name) const;  // throws if absent (names the file)

  // CPU tensor viewing the mapping (see the file comment: read-only, copy when misaligned).
  at::Tensor tensor(std::string_view name) const;
  at::Tensor tensor(const SafetensorsTensorInfo& info) const;
  // The raw bytes of a tensor inside the mapping.
  std::span<const std::byte> tensor_bytes(const SafetensorsTensorInfo& info) const;

  const std::shared_ptr<const MappedFile>& mapping() const { return mapping_; }

 private:
  SafetensorsFile() = default;
  std::shared_ptr<const MappedFile> mapping_;
  SafetensorsHeader header_;
};

// A checkpoint folder or file: a single model.safetensors, or shards listed by an index json
// ({"metadata": {...}, "weight_map": {tensor: shard file}}). Gives name -> (file, info) lookup.
class SafetensorsCheckpoint {
 public:
  // `path` may be: a folder (uses model.safetensors.index.json if present, else model.safetensors, else
  // the only *.safetensors file), a .safetensors file, or an index .json file.
  static SafetensorsCheckpoint open(const std::filesystem::path& path);

  bool sharded() const { return sharded_; }
  std::vector<std::string> names() const;  // sorted
  bool contains(std::string_view name) const;
  const SafetensorsTensorInfo& info(std::string_view name) const;
  const SafetensorsFile& file_of(std::string_view name) const;
  at::Tensor tensor(std::string_view name) const;  // as SafetensorsFile::tensor
  const std::vector<std::shared_ptr<const SafetensorsFile>>& files() const { return files_; }
  // Sharded: the index's "metadata" (non-string values as their JSON text); single file: its __metadata__.
  const std::map<std::string, std::string>& metadata() const { return metadata_; }
  std::size_t size() const { return where_.size(); }

 private:
  bool sharded_ = false;
  std::vector<std::shared_ptr<const SafetensorsFile>> files_;
  std::map<std::string, std::size_t, std::less<>> where_;  // tensor name -> index in files_
  std::map<std::string, std::string> metadata_;
};

// Loads every tensor of a checkpoint (CPU, zero-copy views), name -> tensor.
std::map<std::string, at::Tensor> load_safetensors_dir(const std::filesystem::path& path);

using NamedTensors = std::vector<std::pair<std::string, at::Tensor>>;

// Writes one file atomically (AtomicFile). Tensors are moved to CPU and made contiguous as needed; data
// is laid out by decreasing element size (stable: given order otherwise) so every tensor is aligned.
// Duplicate names are an error. Any device / layout is accepted; sparse / complex are errors.
void save_safetensors(const std::filesystem::path& path, const NamedTensors& tensors,
                      const std::map<std::string, std::string>& metadata = {});

struct ShardedSaveResult {
  std::vector<std::filesystem::path> files;  // shard files written, in order
  std::filesystem::path index;               // empty when a single model.safetensors was written
  std::uint64_t total_size = 0;              // sum of tensor bytes (the index's metadata.total_size)
};

// Writes `tensors` (in order) into shards of at most `max_shard_bytes` of tensor data each (a tensor
// larger than that gets a shard of its own): <dir>/model-0000X-of-0000N.safetensors plus
// model.safetensors.index.json {"metadata": {"total_size": ..}, "weight_map": {..}}. If everything
// fits one shard and `single_file_if_fits`, writes <dir>/model.safetensors only (as transformers does).
// `metadata` goes into every shard's __metadata__. Creates `dir` if needed.
ShardedSaveResult save_sharded(const std::filesystem::path& dir, const NamedTensors& tensors,
                               std::uint64_t max_shard_bytes,
                               const std::map<std::string, std::string>& metadata = {},
                               bool single_file_if_fits = true);

}  // namespace llmstudio::io
