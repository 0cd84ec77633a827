// `llmstudio ui`: the studio (web UI + HTTP API + OpenAI-compatible /v1) on 127.0.0.1:10101 by default.
// The work is server::run_studio.
#include <cstdlib>
#include <iostream>

#include "command.h"
#include "listen_flags.h"
#include "llmstudio/server/studio_server.h"

namespace llmstudio::cli {
namespace {

struct UiCliOptions {
  server::ListenOptions listen;  // port 10101 by default
  std::string data_dir, device;
  std::vector<std::string> allow;
  std::uint64_t max_upload_mb = 1024;
};

void setup_ui(CLI::App& app) {
  auto o = std::make_shared<UiCliOptions>();
  auto* cmd = app.add_subcommand("ui", "Start the studio: web UI, HTTP API and OpenAI-compatible /v1 (make wave)");
  add_listen_flags(cmd, o->listen,
                   "Access token required on /api and /v1 as Authorization: Bearer (?token= only on event streams and "
                   ".tar downloads; default: $LLMSTUDIO_TOKEN)");
  cmd->add_option("--data-dir", o->data_dir, "Studio data folder: database, datasets, experiments (default ~/.llmstudio)");
  cmd->add_option("--allow-path", o->allow, "Folder the API may read models and dataset imports from (repeatable)");
  cmd->add_option("--max-upload-mb", o->max_upload_mb, "Largest dataset upload in MiB")->capture_default_str();
  cmd->add_option("--device", o->device, "Device for training and chat: auto|cpu|cuda|cuda:N|mps (default: $LLMSTUDIO_DEVICE or auto)");
  cmd->callback([o] {
    server::StudioOptions s;
    s.listen = o->listen;
    apply_listen_env(s.listen);
    if (o->data_dir.empty()) {
      const char* home = std::getenv("HOME");
      s.data_dir = std::filesystem::path(home && *home ? home : ".") / ".llmstudio";
    } else {
      s.data_dir = o->data_dir;
    }
    for (const auto& a : o->allow) s.allow_paths.emplace_back(a);
    s.max_upload_mb = o->max_upload_mb;
    s.device = o->device;
    server::run_studio(s);
  });
}

}  // namespace
LLMS_COMMAND(90, setup_ui);
}  // namespace llmstudio::cli
