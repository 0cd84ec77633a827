// Which server-side paths the studio may read: only files and folders under the --allow-path roots (and the
// studio's own data folder), decided on canonical paths (symlinks and ".." resolved by realpath) and compared
// component by component, so "/data/../etc/passwd" or "/data-evil" never pass as "/data". A folder that passes
// may still hold symlinks to files elsewhere: check_folder() refuses a folder (a model, a backbone) with an entry
// that resolves outside the roots, before anything in it is read or copied (io/confined_files.h).
#pragma once

#include <filesystem>
#include <string>
#include <vector>

namespace llmstudio::server {

class PathPolicy {
 public:
  // Roots are canonicalised here; a root that does not exist is an Error naming it.
  explicit PathPolicy(const std::vector<std::filesystem::path>& roots);

  const std::vector<std::filesystem::path>& roots() const { return roots_; }
  // The canonical form of a user-given absolute path if it exists and lies under a root; throws ApiError 400
  // (relative, missing) or 403 (outside every root) naming `what`, the path and the roots otherwise.
  std::filesystem::path resolve(const std::string& user_path, const std::string& what) const;
  // Whether a canonical path lies under one of the roots (or is one).
  bool allowed(const std::filesystem::path& canonical) const;
  // Throws ApiError 403 naming `what` and the entry when an entry of `dir` is a symlink that resolves outside the
  // roots and outside `dir` (or is broken). The message never quotes a file's content or a link's target.
  void check_folder(const std::filesystem::path& dir, const std::string& what) const;

 private:
  std::vector<std::filesystem::path> roots_;
};

}  // namespace llmstudio::server
