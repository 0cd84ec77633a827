// Subcommand registry of the `llmstudio` CLI: each cmd_*.cpp registers its subcommand(s) with LLMS_COMMAND,
// main.cpp builds the CLI11 app from them. Commands are thin: they parse flags and call the library.
#pragma once

#include <CLI/CLI.hpp>

namespace llmstudio::cli {

using CommandSetup = void (*)(CLI::App& app);

// `order` sorts the subcommands in --help (lower first).
int register_command(int order, CommandSetup setup);

}  // namespace llmstudio::cli

#define LLMS_COMMAND(order, fn) \
  [[maybe_unused]] static const int llms_command_##fn = ::llmstudio::cli::register_command(order, fn)
