// The web UI's static files (everything under ui/), embedded into the binary at build time by
// cmake/EmbedUi.cmake, and their lookup by URL path. Torch-free (part of llmstudio_core).
#pragma once

#include <span>
#include <string_view>

namespace llmstudio::server {

struct UiAsset {
  std::string_view path, content_type, body;
};

// The asset served at a URL path: "/ui/<file under ui/>" (e.g. "/ui/app.js", "/ui/pages/home.js"); "/",
// "/index.html" and "/ui/" give ui/index.html. A query string or fragment is ignored. nullptr when there is no
// such file (paths are only matched against the embedded table, never touch the file system).
const UiAsset* find_ui_asset(std::string_view path);

// Every embedded file, sorted by path.
std::span<const UiAsset> ui_assets();

namespace detail {
std::span<const UiAsset> ui_asset_table();  // defined in the generated ui_assets_data.cpp
}  // namespace detail

}  // namespace llmstudio::server
