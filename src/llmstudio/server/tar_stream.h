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
  using Writer = std::function<bool(const char*, std::size_t)>;
  // Writes the archive through `write` (false from it stops and returns false).
  bool write(const Writer& write) const { return write_range(0, size_, write); }
  // Writes the archive's bytes [offset, offset + length) (clipped to its size): HTTP Range requests.
  bool write_range(std::uint64_t offset, std::uint64_t length, const Writer& write) const;

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
