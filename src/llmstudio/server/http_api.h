// The studio's REST API (docs/openapi.yaml): health/env/config schema/models, datasets, experiments (create with
// the CLI's config validation, start/stop/clone/delete, metrics, logs, config, predictions, live events as
// server-sent events, export and tar download), compare, the OpenAI-compatible /v1 routes for finished
// experiments, and the embedded web UI at / and /ui/*. Routes only translate HTTP <-> the services
// (DatasetService, JobRunner, ExperimentStore, OpenAiService); errors are JSON (http_util.h).
#pragma once

#include <httplib.h>
#include <nlohmann/json.hpp>

#include <atomic>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "llmstudio/server/concurrency_limit.h"
#include "llmstudio/server/dataset_service.h"
#include "llmstudio/server/experiment_store.h"
#include "llmstudio/server/http_util.h"
#include "llmstudio/server/job_runner.h"
#include "llmstudio/server/openai_api.h"
#include "llmstudio/server/path_policy.h"

namespace llmstudio::server {

struct StudioConfig {
  std::filesystem::path data_dir;                  // absolute
  std::vector<std::filesystem::path> allow_paths;  // --allow-path roots
  std::uint64_t max_upload_bytes = 512ull << 20;
  std::string device;                              // training and chat device ("" = auto)
  std::filesystem::path exe;                       // the llmstudio binary for child processes
};

class StudioApi {
 public:
  explicit StudioApi(StudioConfig config);
  ~StudioApi();
  // Registers the routes on `svr` and their methods in `methods` (405 + Allow for other methods).
  void add_routes(httplib::Server& svr, RouteMethods& methods);
  // The paths that serve files and honour a single Range (UI files, export .tar downloads), and the routes a
  // browser fetches by itself that may carry ?token= (event streams, .tar downloads): regexes on the path.
  static const char* range_paths();
  static const char* query_token_routes();
  // Ends event streams and stops the training jobs (their runs become "interrupted").
  void shutdown();

 private:
  nlohmann::json view(const nlohmann::json& doc) const;  // public Experiment JSON
  nlohmann::json experiment_doc(const std::string& id);  // ApiError 404
  nlohmann::json create_experiment(const nlohmann::json& body);
  nlohmann::json models();
  nlohmann::json metrics(const nlohmann::json& doc) const;
  void events(const std::string& id, httplib::Response& res);
  nlohmann::json export_experiment(const std::string& id, const nlohmann::json& body);
  ServedModel resolve_model(const std::string& model);

  StudioConfig cfg_;
  PathPolicy policy_;       // --allow-path roots
  PathPolicy model_policy_;  // roots + <data-dir>/models
  ExperimentStore store_;
  DatasetService datasets_;
  JobRunner runner_;
  OpenAiService openai_;
  nlohmann::json env_;
  std::atomic<bool> stopping_{false};
  ConcurrencyLimit event_streams_{"event streams", 16};  // each holds a worker thread while open
};

}  // namespace llmstudio::server
