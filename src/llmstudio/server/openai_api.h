// The OpenAI-compatible endpoints shared by the studio and `llmstudio serve`: GET /v1/models,
// POST /v1/completions and POST /v1/chat/completions (non-streaming JSON, or server-sent events "data: {chunk}"
// ... "data: [DONE]" with OpenAI's chunk shapes). Generation runs in-process with the infer/ library; one model
// is kept loaded (a request for another model replaces it) and generations run one at a time.
//
// A model is a Hugging Face folder, or an experiment folder of `llmstudio train` (infer/model_source.h, the same
// resolution, prompt format, generation defaults and stop strings as `llmstudio generate`/`chat`; request fields
// that are given override the defaults, as CLI flags do).
#pragma once

#include <httplib.h>

#include <filesystem>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "llmstudio/infer/model_source.h"

namespace llmstudio::server {

// A model the server offers: the id clients name and what infer::resolve_model_source found for its folder.
struct ServedModel {
  std::string id;
  infer::ModelSource source;
};

struct OpenAiOptions {
  // The model for a client's "model" ("" = the default one); throws ApiError 404 for unknown models.
  std::function<ServedModel(const std::string& model)> resolve;
  // Ids listed by GET /v1/models.
  std::function<std::vector<std::string>()> list;
  std::string device;  // "" = $LLMSTUDIO_DEVICE or auto
  std::string dtype = "auto";
  std::int64_t max_tokens_limit = 4096;
};

class OpenAiService {
 public:
  explicit OpenAiService(OpenAiOptions options);
  ~OpenAiService();
  void add_routes(httplib::Server& svr);
  // Loads the model now (serve: fail at start-up rather than at the first request).
  void preload(const std::string& model);

 private:
  struct Loaded;
  std::shared_ptr<Loaded> load(const std::string& model);
  void completion(const httplib::Request& req, httplib::Response& res, bool chat);

  OpenAiOptions opt_;
  std::mutex load_mu_;
  std::shared_ptr<Loaded> loaded_;
};

}  // namespace llmstudio::server
