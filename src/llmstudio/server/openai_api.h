// The OpenAI-compatible endpoints shared by the studio and `llmstudio serve`: GET /v1/models,
// POST /v1/completions and POST /v1/chat/completions (non-streaming JSON, or server-sent events "data: {chunk}"
// ... "data: [DONE]" with OpenAI's chunk shapes). Generation runs in-process with the infer/ library; one model
// is kept loaded (a request for another model replaces it).
//
// One executor thread (serial_executor.h) owns the loaded model: it loads models, encodes prompts and generates,
// one request at a time. An HTTP worker parses and checks the request, resolves the model, hands the executor a
// job and waits for it; a streaming request then gets its events through a queue that the worker writes to the
// client, and a client that goes away stops its generation. At most `max_waiting` jobs wait behind the running
// one: beyond that a request is answered at once with 503, a Retry-After header and a "busy" error. Since the
// model's memory is allocated and freed by that one thread (and the freed memory handed back with
// platform::release_free_memory()), switching models does not grow the process.
//
// A model is a Hugging Face folder, or an experiment folder of `llmstudio train` (infer/model_source.h, the same
// resolution, prompt format, generation defaults and stop strings as `llmstudio generate`/`chat`; request fields
// that are given override the defaults, as CLI flags do).
#pragma once

#include <httplib.h>

#include <atomic>
#include <filesystem>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "llmstudio/infer/model_source.h"
#include "llmstudio/server/http_util.h"
#include "llmstudio/server/serial_executor.h"

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
  std::size_t max_waiting = 4;  // requests waiting behind the running generation before 503s
  int retry_after_s = 2;        // Retry-After of those 503s
};

class OpenAiService {
 public:
  explicit OpenAiService(OpenAiOptions options);
  ~OpenAiService();
  void add_routes(Routes& routes);
  // Loads the model now (serve: fail at start-up rather than at the first request).
  void preload(const std::string& model);

 private:
  struct Loaded;
  struct Job;
  struct Exchange;
  // On the executor thread: the loaded model for `served`, loading it (after freeing the previous one) if needed.
  Loaded& model_for(const ServedModel& served);
  // On the executor thread: runs one request, reporting to its Exchange.
  void execute(const ServedModel& served, const Job& job, Exchange& x);
  void completion(const httplib::Request& req, httplib::Response& res, bool chat);

  OpenAiOptions opt_;
  std::atomic<bool> stopping_{false};
  std::unique_ptr<Loaded> loaded_;  // touched only on the executor thread
  SerialExecutor exec_;             // last: destroyed (joined) first, freeing loaded_ on its own thread
};

}  // namespace llmstudio::server
