// MappedFile: a read-only memory mapping of a whole file (RAII; POSIX mmap). Torch-free.
// Shared through std::shared_ptr so tensors that view the bytes keep the mapping alive.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <span>

namespace llmstudio::io {

class MappedFile {
 public:
  // Maps `path` read-only (PROT_READ, MAP_PRIVATE). An empty file gives size() == 0 and data() == nullptr.
  // Errors (missing file, not a regular file, mmap failure) are llmstudio::Error naming the file.
  static std::shared_ptr<const MappedFile> open(const std::filesystem::path& path);

  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  const std::byte* data() const { return data_; }
  std::size_t size() const { return size_; }
  std::span<const std::byte> bytes() const { return {data_, size_}; }
  const std::filesystem::path& path() const { return path_; }

 private:
  MappedFile() = default;
  std::filesystem::path path_;
  const std::byte* data_ = nullptr;
  std::size_t size_ = 0;
};

}  // namespace llmstudio::io
