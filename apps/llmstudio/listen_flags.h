// Flags shared by the two server commands, `llmstudio ui` and `llmstudio serve`: where to listen, the access
// token (default $LLMSTUDIO_TOKEN) and the request policy's extra hosts and origins (server/request_policy.h).
#pragma once

#include <CLI/CLI.hpp>

#include "llmstudio/server/studio_server.h"

namespace llmstudio::cli {

// Adds --host, --port, --auth-token (described by `token_help`), --allowed-host and --allow-origin, bound to `l`.
void add_listen_flags(CLI::App* cmd, server::ListenOptions& l, const std::string& token_help);
// After parsing: the token from $LLMSTUDIO_TOKEN when --auth-token was not given.
void apply_listen_env(server::ListenOptions& l);

}  // namespace llmstudio::cli
