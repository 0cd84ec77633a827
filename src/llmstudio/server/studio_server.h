// The two server processes: `llmstudio ui` (the studio: REST API + web UI + /v1) and `llmstudio serve` (the /v1
// routes for one model). Owns the process side: the bind-safety rule (a non-loopback address needs an access
// token), the request policy's settings (--allowed-host, --allow-origin: request_policy.h), the transport
// (http_server.h), listening, printing where it listens, and a clean stop on SIGINT/SIGTERM (training jobs are
// stopped with a checkpoint and become "interrupted", resumable).
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace llmstudio::server {

struct ListenOptions {
  std::string host = "127.0.0.1";
  int port = 10101;
  std::string token;  // "" = none (only allowed on loopback)
  std::vector<std::string> allowed_hosts;    // extra Host names ("name" or "name:port"): --allowed-host
  std::vector<std::string> allowed_origins;  // cross-origin web apps allowed to call the API: --allow-origin
};

// Throws llmstudio::Error when `host` is not loopback and there is no token.
void check_bind_safety(const ListenOptions& listen);

struct StudioOptions {
  ListenOptions listen;
  std::filesystem::path data_dir;
  std::vector<std::filesystem::path> allow_paths;
  std::uint64_t max_upload_mb = 1024;
  std::string device;
};

// Runs the studio until SIGINT/SIGTERM.
void run_studio(const StudioOptions& options);

struct ServeOptions {
  ListenOptions listen;
  std::filesystem::path model;  // model folder or experiment folder
  std::string model_name;       // id in /v1/models ("" = the folder name)
  std::string device;
  std::string dtype = "auto";
};

// Runs `llmstudio serve` until SIGINT/SIGTERM.
void run_model_server(const ServeOptions& options);

}  // namespace llmstudio::server
