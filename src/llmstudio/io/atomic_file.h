// Atomic file writes: content goes to a temporary file in the same folder, is flushed to disk and renamed
// over the target, so readers never see a half-written file and a crash loses nothing that was there before.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <string_view>

namespace llmstudio::io {

// An open temporary file next to `target`; commit() fsyncs and renames it over the target.
// Destroyed without commit() (an exception, say), it removes the temporary file.
class AtomicFile {
 public:
  explicit AtomicFile(std::filesystem::path target);
  ~AtomicFile();
  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;

  void write(const void* data, std::size_t size);
  void write(std::string_view s) { write(s.data(), s.size()); }
  std::uint64_t bytes_written() const { return written_; }
  void commit();

 private:
  std::filesystem::path target_;
  std::filesystem::path temp_;
  int fd_ = -1;
  std::uint64_t written_ = 0;
  bool committed_ = false;
};

// Writes `content` to `target` atomically.
void write_file_atomic(const std::filesystem::path& target, std::string_view content);

// Removes a file or a folder tree if it exists (POSIX nftw). Use this instead of std::filesystem::remove_all in
// code linked with libtorch: libtorch.so exports its own copy of some std::filesystem functions, and its
// remove_all crashes when mixed with the system libstdc++.
void remove_tree(const std::filesystem::path& path);

// Reads a whole file; errors name the file.
std::string read_file(const std::filesystem::path& path);

}  // namespace llmstudio::io
