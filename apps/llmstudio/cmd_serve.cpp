// `llmstudio serve -m <model folder | experiment folder>`: the OpenAI-compatible /v1 routes (models, completions,
// chat completions, streaming or not) for one model. The work is server::run_model_server.
#include <cstdlib>

#include "command.h"
#include "listen_flags.h"
#include "llmstudio/server/studio_server.h"

namespace llmstudio::cli {
namespace {

struct ServeCliOptions {
  std::string model, name, device, dtype = "auto";
  server::ListenOptions listen = {"127.0.0.1", 8000};
};

void setup_serve(CLI::App& app) {
  auto o = std::make_shared<ServeCliOptions>();
  auto* cmd = app.add_subcommand("serve", "Serve a model or a fine-tuned experiment with an OpenAI-compatible API (/v1)");
  cmd->add_option("-m,--model", o->model, "Model folder, or an experiment folder of `llmstudio train`")->required();
  cmd->add_option("--model-name", o->name, "Model id in /v1/models (default: the folder name)");
  add_listen_flags(cmd, o->listen, "Access token required on /v1 (default: $LLMSTUDIO_TOKEN)");
  cmd->add_option("--device", o->device, "auto|cpu|cuda|cuda:N|mps (default: $LLMSTUDIO_DEVICE or auto)");
  cmd->add_option("--dtype", o->dtype, "auto|float32|bfloat16|float16");
  cmd->callback([o] {
    server::ServeOptions s;
    s.listen = o->listen;
    apply_listen_env(s.listen);
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
