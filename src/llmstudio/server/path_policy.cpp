// Server-side path allow-list (see path_policy.h).
#include "llmstudio/server/path_policy.h"

#include "llmstudio/io/confined_files.h"
#include "llmstudio/server/api_error.h"

namespace llmstudio::server {
namespace fs = std::filesystem;

PathPolicy::PathPolicy(const std::vector<fs::path>& roots) {
  for (const auto& r : roots) {
    fs::path c = io::real_path(r);
    LLMS_CHECK(!c.empty(), "--allow-path ", r, " does not exist; give existing folders");
    roots_.push_back(c);
  }
}

bool PathPolicy::allowed(const fs::path& canonical) const {
  for (const auto& r : roots_)
    if (io::is_within(canonical, r)) return true;
  return false;
}

void PathPolicy::check_folder(const fs::path& dir, const std::string& what) const {
  try {
    io::check_confined_folder(dir, roots_, what);
  } catch (const Error& e) {
    api_fail(403, e.what());
  }
}

fs::path PathPolicy::resolve(const std::string& user_path, const std::string& what) const {
  if (user_path.empty() || user_path.find('\0') != std::string::npos) api_fail(400, what, ": empty or invalid path");
  if (fs::path(user_path).is_relative()) api_fail(400, what, ": \"", user_path, "\" is not an absolute path");
  if (roots_.empty())
    api_fail(403, what, ": \"", user_path, "\" is not allowed: the studio was started without --allow-path",
             "\n  hint: restart with --allow-path <folder> to let it read server-side files");
  fs::path c = io::real_path(user_path);
  // Refuse before saying whether it exists, so the API cannot probe the file system outside the roots.
  const fs::path shown = c.empty() ? fs::path(user_path).lexically_normal() : c;
  if (!allowed(shown) || (c.empty() && user_path.find("..") != std::string::npos)) {
    std::string list;
    for (const auto& r : roots_) list += (list.empty() ? "" : ", ") + r.string();
    api_fail(403, what, ": \"", user_path, "\" is outside the allowed folders (", list, ")");
  }
  if (c.empty()) api_fail(400, what, ": \"", user_path, "\" does not exist");
  return c;
}

}  // namespace llmstudio::server
