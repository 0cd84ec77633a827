// `llmstudio env`: what this machine offers and which device/dtype the policy picks.
#include <nlohmann/json.hpp>

#include <iostream>

#include "command.h"
#include "llmstudio/platform/platform.h"

namespace llmstudio::cli {
namespace {

struct EnvOptions {
  std::string device;
  std::string dtype = "auto";
  bool json = false;
};

void setup_env(CLI::App& app) {
  auto opts = std::make_shared<EnvOptions>();
  auto* cmd = app.add_subcommand("env", "Show the platform (OS, CPU, CUDA/MPS devices, libtorch) and the chosen device");
  cmd->add_option("--device", opts->device, "auto|cpu|cuda|cuda:N|mps (default: $LLMSTUDIO_DEVICE or auto)");
  cmd->add_option("--dtype", opts->dtype, "auto|float32|bfloat16|float16");
  cmd->add_flag("--json", opts->json, "Print JSON");
  cmd->callback([opts] {
    auto facts = platform::probe_platform();
    auto choice = platform::choose_device(facts, platform::device_request_from(opts->device), opts->dtype);
    if (opts->json) {
      nlohmann::json j = platform::to_json(facts);
      j["selected"] = platform::to_json(choice);
      std::cout << j.dump(2) << "\n";
    } else {
      std::cout << platform::format_table(facts, choice);
    }
  });
}

}  // namespace
LLMS_COMMAND(10, setup_env);
}  // namespace llmstudio::cli
