// `llmstudio ui`: the studio (web UI + HTTP API + OpenAI-compatible /v1) on 127.0.0.1:10101 by default.
// The work is server::run_studio.
#include <cstdlib>
#include <iostream>

#include "command.h"
#include "llmstudio/server/studio_server.h"

namespace llmstudio::cli {
namespace {

struct UiCliOptions {
  std::string host = "127.0.0.1", data_dir, token, device;
  int port = 10101;
  std::vector<std::string> allow, allowed_hosts, allow_origins;
  std::uint64_t max_upload_mb = 1024;
};

void setup_ui(CLI::App& app) {
  auto o = std::make_shared<UiCliOptions>();
  auto* cmd = app.add_subcommand("ui", "Start the studio: web UI, HTTP API and OpenAI-compatible /v1 (make wave)");
  cmd->add_option("--host", o->host, "Address to listen on (non-loopback needs an access token)")->capture_default_str();
  cmd->add_option("--port", o->port, "Port")->capture_default_str();
  cmd->add_option("--data-dir", o->data_dir, "Studio data folder: database, datasets, experiments (default ~/.llmstudio)");
  cmd->add_option("--allow-path", o->allow, "Folder the API may read models and dataset imports from (repeatable)");
  cmd->add_option("--auth-token", o->token,
                  "Access token required on /api and /v1 as Authorization: Bearer (?token= only on event streams and "
                  ".tar downloads; default: $LLMSTUDIO_TOKEN)");
  cmd->add_option("--max-upload-mb", o->max_upload_mb, "Largest dataset upload in MiB")->capture_default_str();
  cmd->add_option("--allowed-host", o->allowed_hosts,
                  "Extra name the server may be reached as, \"name\" or \"name:port\" (repeatable). Every request's Host "
                  "header must name this server: localhost, 127.x.y.z or [::1] with --port, the --host address, any IP "
                  "address and port when --host is 0.0.0.0 or ::, or an --allowed-host; else 403 (against DNS rebinding)");
  cmd->add_option("--allow-origin", o->allow_origins,
                  "Web app origin, e.g. http://localhost:5173, allowed to send POST/DELETE requests (repeatable; CORS "
                  "headers are sent to it). Other cross-origin POST/DELETE get 403, and request bodies must be "
                  "application/json or multipart/form-data (415), against cross-site request forgery");
  cmd->add_option("--device", o->device, "Device for training and chat: auto|cpu|cuda|cuda:N|mps (default: $LLMSTUDIO_DEVICE or auto)");
  cmd->callback([o] {
    server::StudioOptions s;
    s.listen = {o->host, o->port, o->token, o->allowed_hosts, o->allow_origins};
    if (s.listen.token.empty())
      if (const char* t = std::getenv("LLMSTUDIO_TOKEN")) s.listen.token = t;
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
