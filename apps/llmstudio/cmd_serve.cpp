// `llmstudio serve -m <model folder | experiment folder>`: the OpenAI-compatible /v1 routes (models, completions,
// chat completions, streaming or not) for one model. The work is server::run_model_server.
#include <cstdlib>

#include "command.h"
#include "llmstudio/server/studio_server.h"

namespace llmstudio::cli {
namespace {

struct ServeCliOptions {
  std::string model, name, host = "127.0.0.1", token, device, dtype = "auto";
  int port = 8000;
  std::vector<std::string> allowed_hosts, allow_origins;
};

void setup_serve(CLI::App& app) {
  auto o = std::make_shared<ServeCliOptions>();
  auto* cmd = app.add_subcommand("serve", "Serve a model or a fine-tuned experiment with an OpenAI-compatible API (/v1)");
  cmd->add_option("-m,--model", o->model, "Model folder, or an experiment folder of `llmstudio train`")->required();
  cmd->add_option("--model-name", o->name, "Model id in /v1/models (default: the folder name)");
  cmd->add_option("--host", o->host, "Address to listen on (non-loopback needs an access token)")->capture_default_str();
  cmd->add_option("--port", o->port, "Port")->capture_default_str();
  cmd->add_option("--auth-token", o->token, "Access token required on /v1 (default: $LLMSTUDIO_TOKEN)");
  cmd->add_option("--allowed-host", o->allowed_hosts,
                  "Extra name the server may be reached as, \"name\" or \"name:port\" (repeatable). Every request's Host "
                  "header must name this server: localhost, 127.x.y.z or [::1] with --port, the --host address, any IP "
                  "address and port when --host is 0.0.0.0 or ::, or an --allowed-host; else 403 (against DNS rebinding)");
  cmd->add_option("--allow-origin", o->allow_origins,
                  "Web app origin, e.g. http://localhost:5173, allowed to send POST/DELETE requests (repeatable; CORS "
                  "headers are sent to it). Other cross-origin POST/DELETE get 403, and request bodies must be "
                  "application/json or multipart/form-data (415), against cross-site request forgery");
  cmd->add_option("--device", o->device, "auto|cpu|cuda|cuda:N|mps (default: $LLMSTUDIO_DEVICE or auto)");
  cmd->add_option("--dtype", o->dtype, "auto|float32|bfloat16|float16");
  cmd->callback([o] {
    server::ServeOptions s;
    s.listen = {o->host, o->port, o->token, o->allowed_hosts, o->allow_origins};
    if (s.listen.token.empty())
      if (const char* t = std::getenv("LLMSTUDIO_TOKEN")) s.listen.token = t;
    s.model = o->model;
    s.model_name = o->name;
    s.device = o->device;
    s.dtype = o->dtype;
    server::run_model_server(s);
  });
}

}  // namespace
LLMS_COMMAND(85, setup_serve);
}  // namespace llmstudio::cli
