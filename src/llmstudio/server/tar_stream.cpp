// Streaming ustar writer (see tar_stream.h).
#include "llmstudio/server/tar_stream.h"

#include <algorithm>
#include <cstring>
#include <fstream>

#include "llmstudio/core/error.h"

namespace llmstudio::server {
namespace fs = std::filesystem;

namespace {

void octal(char* field, std::size_t width, std::uint64_t value) {
  // width includes the terminating NUL
  std::snprintf(field, width, "%0*llo", static_cast<int>(width - 1), static_cast<unsigned long long>(value));
}

std::string header(const std::string& name, std::uint64_t size) {
  std::string h(512, '\0');
  char* p = h.data();
  std::string base = name, prefix;
  if (base.size() > 100) {  // ustar: split at a '/' into prefix (155) + name (100)
    const auto cut = base.rfind('/', 155);
    LLMS_CHECK(cut != std::string::npos && base.size() - cut - 1 <= 100, "tar: path too long: ", name);
    prefix = base.substr(0, cut);
    base = base.substr(cut + 1);
  }
  std::memcpy(p, base.data(), base.size());
  octal(p + 100, 8, 0644);
  octal(p + 108, 8, 0);
  octal(p + 116, 8, 0);
  octal(p + 124, 12, size);
  octal(p + 136, 12, 0);
  std::memset(p + 148, ' ', 8);
  p[156] = '0';
  std::memcpy(p + 257, "ustar", 6);
  std::memcpy(p + 263, "00", 2);
  std::memcpy(p + 345, prefix.data(), prefix.size());
  unsigned sum = 0;
  for (unsigned char c : h) sum += c;
  std::snprintf(p + 148, 8, "%06o", sum);
  p[155] = ' ';
  return h;
}

std::uint64_t padded(std::uint64_t n) { return (n + 511) / 512 * 512; }

}  // namespace

TarStream::TarStream(const fs::path& dir, std::string top) {
  for (const auto& e : fs::recursive_directory_iterator(dir)) {
    if (!e.is_regular_file()) continue;
    entries_.push_back({e.path(), top + "/" + fs::relative(e.path(), dir).generic_string(), e.file_size()});
  }
  std::sort(entries_.begin(), entries_.end(), [](const Entry& a, const Entry& b) { return a.name < b.name; });
  for (const auto& e : entries_) size_ += 512 + padded(e.size);
  size_ += 1024;  // two zero blocks end the archive
}

bool TarStream::write_range(std::uint64_t offset, std::uint64_t length, const Writer& write) const {
  const std::uint64_t end = std::min(size_, offset + std::min(length, size_));
  std::uint64_t pos = 0;  // archive position of the current segment
  // The part of a segment [pos, pos + n) inside [offset, end): (skip, count), count 0 when none.
  const auto overlap = [&](std::uint64_t n) -> std::pair<std::uint64_t, std::uint64_t> {
    const std::uint64_t from = std::max(offset, pos), to = std::min(end, pos + n);
    return from < to ? std::pair{from - pos, to - from} : std::pair<std::uint64_t, std::uint64_t>{0, 0};
  };
  const std::string zeros(1024, '\0');
  const auto bytes = [&](const char* data, std::uint64_t n) {
    const auto [skip, count] = overlap(n);
    pos += n;
    return count == 0 || write(data + skip, static_cast<std::size_t>(count));
  };
  std::vector<char> buf;
  for (const auto& e : entries_) {
    if (pos >= end) break;
    const std::string h = header(e.name, e.size);
    if (!bytes(h.data(), h.size())) return false;
    if (const auto [skip, count] = overlap(e.size); count > 0) {
      std::ifstream in(e.file, std::ios::binary);
      LLMS_CHECK(in.good(), "cannot read ", e.file);
      in.seekg(static_cast<std::streamoff>(skip));
      buf.resize(1 << 20);
      for (std::uint64_t left = count; left > 0;) {
        const auto n = static_cast<std::size_t>(std::min<std::uint64_t>(left, buf.size()));
        in.read(buf.data(), static_cast<std::streamsize>(n));
        LLMS_CHECK(static_cast<std::size_t>(in.gcount()) == n, "file ", e.file, " changed while being archived");
        if (!write(buf.data(), n)) return false;
        left -= n;
      }
    }
    pos += e.size;
    if (!bytes(zeros.data(), padded(e.size) - e.size)) return false;
  }
  return pos >= end || bytes(zeros.data(), 1024);
}

}  // namespace llmstudio::server
