// `llmstudio` entry point: builds the CLI from the registered subcommands and turns library errors into
// one clear line on stderr and a non-zero exit code.
#include <algorithm>
#include <iostream>
#include <vector>

#include <c10/util/Exception.h>

#include "command.h"
#include "llmstudio/core/error.h"

namespace llmstudio::cli {
namespace {
std::vector<std::pair<int, CommandSetup>>& registry() {
  static std::vector<std::pair<int, CommandSetup>> r;
  return r;
}
}  // namespace

int register_command(int order, CommandSetup setup) {
  registry().emplace_back(order, setup);
  return 0;
}

}  // namespace llmstudio::cli

int main(int argc, char** argv) {
  CLI::App app{"LLM Studio: fine-tune and run LLMs natively (CUDA, Apple MPS, CPU)", "llmstudio"};
  app.set_version_flag("--version", std::string("llmstudio ") + LLMS_VERSION);
  app.require_subcommand(1);
  auto& reg = llmstudio::cli::registry();
  std::stable_sort(reg.begin(), reg.end(), [](auto& a, auto& b) { return a.first < b.first; });
  for (auto& [order, setup] : reg) setup(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  } catch (const llmstudio::Error& e) {
    std::cerr << "error: " << e.what() << "\n";
    return 1;
  } catch (const c10::Error& e) {  // a libtorch error that escaped the library's checks: no C++ backtrace
    std::cerr << "error: " << e.what_without_backtrace() << "\n";
    return 1;
  } catch (const std::exception& e) {
    std::cerr << "error: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
