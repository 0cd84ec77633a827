// Listening flags of `llmstudio ui` and `llmstudio serve` (see listen_flags.h).
#include "listen_flags.h"

#include <cstdlib>

namespace llmstudio::cli {

void add_listen_flags(CLI::App* cmd, server::ListenOptions& l, const std::string& token_help) {
  cmd->add_option("--host", l.host, "Address to listen on (non-loopback needs an access token)")->capture_default_str();
  cmd->add_option("--port", l.port, "Port")->capture_default_str();
  cmd->add_option("--auth-token", l.token, token_help);
  cmd->add_option("--allowed-host", l.allowed_hosts,
                  "Extra name the server may be reached as, \"name\" or \"name:port\" (repeatable). Every request's Host "
                  "header must name this server: localhost, 127.x.y.z or [::1] with --port, the --host address, any IP "
                  "address and port when --host is 0.0.0.0 or ::, or an --allowed-host; else 403 (against DNS rebinding)");
  cmd->add_option("--allow-origin", l.allowed_origins,
                  "Web app origin, e.g. http://localhost:5173, allowed to send POST/DELETE requests (repeatable; CORS "
                  "headers are sent to it). Other cross-origin POST/DELETE get 403, and request bodies must be "
                  "application/json or multipart/form-data (415), against cross-site request forgery");
}

void apply_listen_env(server::ListenOptions& l) {
  if (l.token.empty())
    if (const char* t = std::getenv("LLMSTUDIO_TOKEN")) l.token = t;
}

}  // namespace llmstudio::cli
