// A folder as an uncompressed POSIX ustar archive, streamed: the archive's size is known up front (for
// Content-Length) and its bytes are produced file by file, so exporting a multi-GB model never holds it in memory.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

namespace llmstudio::server {

class TarStream {
 public:
  // Every regular file under `dir`, stored as "<top>/<relative path>" (sorted, so archives are reproducible).
  TarStream(const std::filesystem::path& dir, std::string top);
  std::uint64_t size() const { return size_; }
  // Writes the archive through `write` (false from it stops and returns false).
  bool write(const std::function<bool(const char*, std::size_t)>& write) const;

 private:
  struct Entry {
    std::filesystem::path file;
    std::string name;
    std::uint64_t size;
  };
  std::vector<Entry> entries_;
  std::uint64_t size_ = 0;
};

}  // namespace llmstudio::server
