// The embedded web UI (cmake/EmbedUi.cmake + server/ui_assets.cpp): every file under ui/ is served byte for
// byte at /ui/<path> with the right content type, "/" is index.html, unknown and traversal paths are not found,
// and every module import / asset reference inside the UI resolves to an embedded file.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <set>
#include <sstream>
#include <string>

#include "llmstudio/server/ui_assets.h"

namespace fs = std::filesystem;
using llmstudio::server::find_ui_asset;
using llmstudio::server::ui_assets;

namespace {

std::string read_bytes(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream os;
  os << in.rdbuf();
  return os.str();
}

// ui/ files as "/ui/<relative path>" -> contents (hidden files and editor backups are not embedded).
std::map<std::string, std::string> files_on_disk() {
  std::map<std::string, std::string> out;
  const fs::path root(LLMS_UI_DIR);
  for (const auto& e : fs::recursive_directory_iterator(root)) {
    if (!e.is_regular_file()) continue;
    const std::string name = e.path().filename().string();
    if (name.starts_with(".") || name.ends_with("~")) continue;
    out["/ui/" + fs::relative(e.path(), root).generic_string()] = read_bytes(e.path());
  }
  return out;
}

// Resolves a relative module specifier ("./x.js", "../chart.js") against the URL path of the importing file.
std::string resolve(const std::string& from, const std::string& spec) {
  if (spec.starts_with("/")) return spec;
  std::vector<std::string> parts;
  std::string dir = from.substr(0, from.rfind('/'));
  std::stringstream ds(dir.substr(1));
  for (std::string seg; std::getline(ds, seg, '/');) parts.push_back(seg);
  std::stringstream ss(spec);
  for (std::string seg; std::getline(ss, seg, '/');) {
    if (seg == ".") continue;
    if (seg == "..") {
      if (!parts.empty()) parts.pop_back();
    } else {
      parts.push_back(seg);
    }
  }
  std::string out;
  for (const auto& p : parts) out += "/" + p;
  return out;
}

}  // namespace

TEST(UiAssets, EveryFileUnderUiIsEmbeddedByteForByte) {
  const auto disk = files_on_disk();
  ASSERT_FALSE(disk.empty()) << "no files under " << LLMS_UI_DIR;
  ASSERT_TRUE(disk.count("/ui/index.html")) << "ui/index.html missing";
  EXPECT_EQ(ui_assets().size(), disk.size()) << "embedded file count differs from the files under " << LLMS_UI_DIR
                                             << " (rebuild regenerates the table)";
  for (const auto& [path, bytes] : disk) {
    const auto* a = find_ui_asset(path);
    ASSERT_NE(a, nullptr) << path << " is under ui/ but not embedded";
    EXPECT_EQ(a->path, path);
    EXPECT_EQ(a->body.size(), bytes.size()) << path;
    EXPECT_TRUE(a->body == bytes) << path << ": embedded bytes differ from the file";
  }
}

TEST(UiAssets, TableIsSortedAndUnique) {
  const auto all = ui_assets();
  for (std::size_t i = 1; i < all.size(); ++i) EXPECT_LT(all[i - 1].path, all[i].path);
}

TEST(UiAssets, ContentTypesFollowTheExtension) {
  const std::map<std::string, std::string> by_ext = {{".html", "text/html; charset=utf-8"},
                                                     {".js", "text/javascript; charset=utf-8"},
                                                     {".css", "text/css; charset=utf-8"},
                                                     {".svg", "image/svg+xml"}};
  int checked = 0;
  for (const auto& a : ui_assets()) {
    const std::string ext = fs::path(std::string(a.path)).extension().string();
    if (const auto it = by_ext.find(ext); it != by_ext.end()) {
      EXPECT_EQ(a.content_type, it->second) << a.path;
      ++checked;
    }
  }
  EXPECT_GE(checked, 3) << "expected at least index.html, a .js and a .css file";
}

TEST(UiAssets, RootAndIndexAliases) {
  const auto* index = find_ui_asset("/ui/index.html");
  ASSERT_NE(index, nullptr);
  for (const char* p : {"/", "/index.html", "/ui/", "/?token=x", "/#/experiments"}) {
    EXPECT_EQ(find_ui_asset(p), index) << p;
  }
  EXPECT_NE(find_ui_asset("/ui/app.js?v=1"), nullptr);
}

TEST(UiAssets, UnknownAndTraversalPathsAreNotFound) {
  for (const char* p : {"/ui/nope.js", "/ui/../CMakeLists.txt", "/../ui/index.html", "/ui/./index.html",
                        "/ui//index.html", "/ui/app.js/", "ui/index.html", "/api/env", "/UI/index.html",
                        "/etc/passwd"}) {
    const std::string path(p);
    EXPECT_EQ(find_ui_asset(path), nullptr) << path;
  }
}

TEST(UiAssets, EveryImportAndReferenceResolvesToAnEmbeddedFile) {
  // ES module imports: `from "./x.js"`, `import "./x.js"`, `import("./x.js")`; HTML: src="/ui/..." href="/ui/...".
  const std::regex js_import(R"((?:from|import)\s*\(?\s*["']([^"']+)["'])");
  const std::regex html_ref(R"((?:src|href)\s*=\s*["'](/ui/[^"']+)["'])");
  int refs = 0;
  for (const auto& a : ui_assets()) {
    const std::string path(a.path), body(a.body);
    const bool js = path.ends_with(".js"), html = path.ends_with(".html");
    if (!js && !html) continue;
    const std::regex& re = js ? js_import : html_ref;
    for (std::sregex_iterator it(body.begin(), body.end(), re), end; it != end; ++it) {
      const std::string spec = (*it)[1];
      if (js && !(spec.starts_with("./") || spec.starts_with("../") || spec.starts_with("/"))) {
        ADD_FAILURE() << path << " imports bare specifier '" << spec << "' (no npm/bundler: use a relative path)";
        continue;
      }
      const std::string target = resolve(path, spec);
      EXPECT_NE(find_ui_asset(target), nullptr) << path << " references '" << spec << "' -> " << target
                                                << ", which is not an embedded file";
      ++refs;
    }
  }
  EXPECT_GE(refs, 3) << "expected index.html to load the app and the app to import its modules";
}
