// Symlink-aware confinement of folders to allowed roots (see confined_files.h).
#include "llmstudio/io/confined_files.h"

#include <climits>
#include <cstdlib>

#include "llmstudio/core/error.h"

namespace llmstudio::io {
namespace fs = std::filesystem;

fs::path real_path(const fs::path& p) {
  char buf[PATH_MAX];
  if (!::realpath(p.c_str(), buf)) return {};
  return fs::path(buf);
}

bool is_within(const fs::path& p, const fs::path& root) {
  auto pi = p.begin(), ri = root.begin();
  for (; ri != root.end(); ++ri, ++pi) {
    if (ri->empty()) continue;  // a trailing separator
    if (pi == p.end() || *pi != *ri) return false;
  }
  return true;
}

std::optional<fs::path> entry_outside(const fs::path& dir, const std::vector<fs::path>& roots, int max_depth) {
  const fs::path self = real_path(dir);
  if (self.empty()) return std::nullopt;  // nothing there to read
  auto allowed = [&](const fs::path& target) {
    if (is_within(target, self)) return true;
    for (const auto& r : roots)
      if (is_within(target, r)) return true;
    return false;
  };
  std::error_code ec;
  fs::recursive_directory_iterator it(self, fs::directory_options::skip_permission_denied, ec), end;
  for (std::size_t seen = 0; !ec && it != end && seen < 20000; it.increment(ec), ++seen) {
    if (it.depth() >= max_depth) it.disable_recursion_pending();
    std::error_code e2;
    if (!it->is_symlink(e2)) continue;  // a plain entry of a canonical folder lies inside it
    const fs::path target = real_path(it->path());
    if (target.empty() || !allowed(target)) return it->path();
  }
  return std::nullopt;
}

void check_confined_folder(const fs::path& dir, const std::vector<fs::path>& roots, const std::string& what) {
  if (auto bad = entry_outside(dir, roots))
    fail(what, ": \"", bad->string(), "\" is a symbolic link to a file outside the allowed folders (or a broken one); ",
         "files are read only when they lie under an allowed folder after resolving links",
         "\n  hint: copy the file into the folder, or also allow the folder the link points into (--allow-path)");
}

std::vector<fs::path> confine_roots_from_env() {
  std::vector<fs::path> roots;
  const char* v = std::getenv(kConfineRootsEnv);
  if (!v) return roots;
  const std::string s(v);
  std::size_t pos = 0;
  while (pos <= s.size()) {
    auto nl = s.find('\n', pos);
    if (nl == std::string::npos) nl = s.size();
    if (nl > pos) {
      const fs::path c = real_path(s.substr(pos, nl - pos));
      if (!c.empty()) roots.push_back(c);
    }
    pos = nl + 1;
  }
  if (roots.empty()) roots.emplace_back("/nonexistent-llmstudio-root");  // set but nothing valid: allow nothing outside
  return roots;
}

std::string confine_roots_value(const std::vector<fs::path>& roots) {
  std::string v;
  for (const auto& r : roots) v += (v.empty() ? "" : "\n") + r.string();
  return v;
}

}  // namespace llmstudio::io
