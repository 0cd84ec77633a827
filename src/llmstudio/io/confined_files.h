// Confinement of file reads to allowed folders, decided after resolving symlinks: a folder under an allowed root
// (a model folder under the studio's --allow-path) may hold symlinks, and a symlinked tokenizer.json, config.json
// or weights file pointing elsewhere must not be read or copied. The studio checks the folders it hands to
// training, export and /v1 with entry_outside(); the training processes it starts get the roots in
// $LLMSTUDIO_CONFINE_ROOTS and check the backbone folder again when they read and copy its files. Messages built
// from these checks name files, never their contents or their link targets.
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace llmstudio::io {

// The environment variable holding the roots of a confined process ("\n"-separated canonical folders).
inline constexpr const char* kConfineRootsEnv = "LLMSTUDIO_CONFINE_ROOTS";

// realpath(3): the canonical path, or an empty path when it does not exist.
std::filesystem::path real_path(const std::filesystem::path& p);
// Whether canonical `p` is `root` or lies under it, compared component by component ("/data-evil" is not in "/data").
bool is_within(const std::filesystem::path& p, const std::filesystem::path& root);
// The first entry of `dir` (files and folders, down to `max_depth` levels of subfolders; at most 20,000 entries
// looked at) that is a symlink resolving outside every root and outside `dir` itself, or a broken symlink;
// nullopt when there is none. `dir` itself must already be allowed (canonical, under a root).
std::optional<std::filesystem::path> entry_outside(const std::filesystem::path& dir,
                                                   const std::vector<std::filesystem::path>& roots, int max_depth = 2);
// Throws llmstudio::Error naming `what` and the entry when entry_outside() finds one.
void check_confined_folder(const std::filesystem::path& dir, const std::vector<std::filesystem::path>& roots,
                           const std::string& what);
// The roots of $LLMSTUDIO_CONFINE_ROOTS; empty (no confinement) when it is unset.
std::vector<std::filesystem::path> confine_roots_from_env();
// The value of $LLMSTUDIO_CONFINE_ROOTS for `roots`.
std::string confine_roots_value(const std::vector<std::filesystem::path>& roots);

}  // namespace llmstudio::io
