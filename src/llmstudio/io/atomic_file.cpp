// Atomic file writes (temp file + fsync + rename) and whole-file reads.
#include "llmstudio/io/atomic_file.h"

#include <fcntl.h>
#include <ftw.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <random>
#include <sstream>

#include "llmstudio/core/error.h"

namespace llmstudio::io {
namespace fs = std::filesystem;

AtomicFile::AtomicFile(fs::path target) : target_(std::move(target)) {
  fs::path dir = target_.parent_path();
  if (dir.empty()) dir = ".";
  LLMS_CHECK(fs::is_directory(dir), "cannot write ", target_, ": folder ", dir, " does not exist");
  std::random_device rd;
  for (int attempt = 0; attempt < 16 && fd_ < 0; ++attempt) {
    temp_ = dir / ("." + target_.filename().string() + ".tmp" + std::to_string(rd() % 1000000));
    fd_ = ::open(temp_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  }
  LLMS_CHECK(fd_ >= 0, "cannot create a temporary file next to ", target_, ": ", std::strerror(errno));
}

AtomicFile::~AtomicFile() {
  if (fd_ >= 0) ::close(fd_);
  if (!committed_) {
    std::error_code ec;
    fs::remove(temp_, ec);
  }
}

void AtomicFile::write(const void* data, std::size_t size) {
  LLMS_CHECK(fd_ >= 0 && !committed_, "write to ", target_, " after commit");
  const char* p = static_cast<const char*>(data);
  while (size > 0) {
    ssize_t n = ::write(fd_, p, size);
    if (n < 0 && errno == EINTR) continue;
    LLMS_CHECK(n > 0, "writing ", temp_, " failed: ", std::strerror(errno), " (disk full?)");
    p += n;
    size -= static_cast<std::size_t>(n);
    written_ += static_cast<std::uint64_t>(n);
  }
}

void AtomicFile::commit() {
  LLMS_CHECK(fd_ >= 0 && !committed_, "commit of ", target_, " twice");
  LLMS_CHECK(::fsync(fd_) == 0, "fsync of ", temp_, " failed: ", std::strerror(errno));
  ::close(fd_);
  fd_ = -1;
  LLMS_CHECK(::rename(temp_.c_str(), target_.c_str()) == 0, "renaming ", temp_, " to ", target_,
             " failed: ", std::strerror(errno));
  committed_ = true;
  // Make the rename itself durable.
  fs::path dir = target_.parent_path();
  int dfd = ::open(dir.empty() ? "." : dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    ::fsync(dfd);
    ::close(dfd);
  }
}

void write_file_atomic(const fs::path& target, std::string_view content) {
  AtomicFile f(target);
  f.write(content);
  f.commit();
}

void remove_tree(const fs::path& path) {
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0) return;  // nothing there
  auto remove_one = [](const char* p, const struct stat*, int, struct FTW*) -> int { return ::remove(p) == 0 ? 0 : -1; };
  LLMS_CHECK(::nftw(path.c_str(), remove_one, 16, FTW_DEPTH | FTW_PHYS) == 0, "cannot remove ", path, ": ",
             std::strerror(errno));
}

std::string read_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  LLMS_CHECK(in.good(), "cannot open ", path, ": ", std::strerror(errno));
  std::ostringstream ss;
  ss << in.rdbuf();
  LLMS_CHECK(!in.bad(), "reading ", path, " failed");
  return ss.str();
}

}  // namespace llmstudio::io
