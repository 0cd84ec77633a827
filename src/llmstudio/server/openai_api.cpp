// OpenAI-compatible /v1 routes with in-process generation (see openai_api.h).
#include "llmstudio/server/openai_api.h"

#include <nlohmann/json.hpp>

#include <chrono>
#include <condition_variable>
#include <ctime>
#include <deque>

#include "llmstudio/infer/generation.h"
#include "llmstudio/infer/text_generation.h"
#include "llmstudio/io/json_text.h"
#include "llmstudio/model/causal_lm.h"
#include "llmstudio/platform/process_limits.h"
#include "llmstudio/server/api_error.h"
#include "llmstudio/server/experiment_store.h"
#include "llmstudio/server/http_util.h"
#include "llmstudio/tokenizer/tokenizer.h"

namespace llmstudio::server {
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

std::int64_t unix_now() {
  return static_cast<std::int64_t>(std::chrono::duration_cast<std::chrono::seconds>(
                                       std::chrono::system_clock::now().time_since_epoch()).count());
}

std::string openai_finish_reason(const std::string& ours) { return ours == "length" || ours == "time" ? "length" : "stop"; }

struct Request {
  std::string model;
  std::optional<std::int64_t> max_tokens;
  std::optional<double> temperature, top_p;
  std::optional<std::uint64_t> seed;
  std::vector<std::string> stop;
  bool stream = false;
};

bool given(const json& body, const char* key) { return body.contains(key) && !body[key].is_null(); }

Request parse_common(const json& body, std::int64_t limit) {
  Request r;
  r.model = json_string(body, "model");
  if (given(body, "max_tokens")) {
    r.max_tokens = json_int(body, "max_tokens", 0);
    if (*r.max_tokens < 1 || *r.max_tokens > limit)
      api_fail(400, "max_tokens: must be in [1, ", limit, "], got ", *r.max_tokens);
  }
  if (given(body, "temperature")) {
    r.temperature = json_number(body, "temperature", 0);
    if (!(*r.temperature >= 0 && *r.temperature <= 2)) api_fail(400, "temperature: must be in [0, 2], got ", *r.temperature);
  }
  if (given(body, "top_p")) {
    r.top_p = json_number(body, "top_p", 1);
    if (!(*r.top_p > 0 && *r.top_p <= 1)) api_fail(400, "top_p: must be in (0, 1], got ", *r.top_p);
  }
  if (given(body, "seed")) r.seed = static_cast<std::uint64_t>(json_int(body, "seed", 0));
  r.stream = json_bool(body, "stream", false);
  if (given(body, "stop")) {
    const json& st = body["stop"];
    if (st.is_string()) {
      r.stop.push_back(st.get<std::string>());
    } else if (st.is_array() && st.size() <= 4) {
      for (const auto& s : st) {
        if (!s.is_string()) api_fail(400, "stop: expected a string or a list of up to 4 strings, got ", io::json_preview(st));
        r.stop.push_back(s.get<std::string>());
      }
    } else {
      api_fail(400, "stop: expected a string or a list of up to 4 strings, got ", io::json_preview(st));
    }
    std::erase_if(r.stop, [](const std::string& s) { return s.empty(); });
  }
  return r;
}

infer::Conversation parse_messages(const json& body) {
  auto it = body.find("messages");
  if (it == body.end() || !it->is_array() || it->empty())
    api_fail(400, "messages: expected a non-empty list of {\"role\", \"content\"} objects");
  infer::Conversation conv;
  bool seen_turn = false;
  for (const auto& m : *it) {
    if (!m.is_object()) api_fail(400, "messages: each message must be an object, got ", io::json_preview(m));
    const std::string role = json_string(m, "role");
    const std::string content = json_string(m, "content");
    if (role == "system" || role == "developer") {
      if (seen_turn) api_fail(400, "messages: a system message must come before the user/assistant messages");
      conv.system += (conv.system.empty() ? "" : "\n") + content;
    } else if (role == "user") {
      seen_turn = true;
      if (!conv.turns.empty() && conv.turns.back().assistant.empty())
        conv.turns.back().user += "\n" + content;  // consecutive user messages: one turn
      else
        conv.turns.push_back({content, ""});
    } else if (role == "assistant") {
      seen_turn = true;
      if (conv.turns.empty()) conv.turns.push_back({"", ""});
      conv.turns.back().assistant += content;
    } else {
      api_fail(400, "messages: role \"", role, "\" is not supported; use system, user or assistant");
    }
  }
  if (conv.turns.empty() || !conv.turns.back().assistant.empty())
    api_fail(400, "messages: the last message must be from the user");
  return conv;
}

// Thrown from a generation callback to stop it: the client is gone or the server is stopping.
struct Cancelled {};

std::string sse(const json& j) { return "data: " + j.dump(-1, ' ', false, json::error_handler_t::replace) + "\n\n"; }

}  // namespace

struct OpenAiService::Loaded {
  Loaded(const ServedModel& served, const std::string& device, const std::string& dtype)
      : id(served.id),
        m(infer::load_for_generation(served.source, {device, dtype, !served.source.adapter_dir.empty()})),
        builder(checked_builder(m, served.id)),
        defaults(infer::default_generation_config(m)),
        stops(infer::default_stop_strings(m)) {}
  static infer::PromptBuilder checked_builder(const infer::LoadedModel& m, const std::string& id) {
    LLMS_CHECK(m.tok.has_value(), "model ", id, " has no tokenizer.json: text generation needs one");
    return infer::make_prompt_builder(m);
  }
  std::string id;
  infer::LoadedModel m;
  infer::PromptBuilder builder;
  infer::GenerationConfig defaults;
  std::vector<std::string> stops;
};

// What a request asks for, parsed on the HTTP worker.
struct OpenAiService::Job {
  bool chat = false;
  Request r;
  infer::Conversation conv;  // chat
  std::string prompt;        // completions
};

// Between the HTTP worker that waits and the executor that works: first "started" (the model is loaded and the
// prompt checked: the worker may now send 200) or an error, then the answer (non-streaming) or SSE events.
struct OpenAiService::Exchange {
  std::mutex mu;
  std::condition_variable cv;
  bool started = false, finished = false;
  std::exception_ptr error;
  json result;
  std::deque<std::string> events;
  std::atomic<bool> cancelled{false};  // the client is gone: stop generating

  void start() { update([&] { started = true; }); }
  void fail(std::exception_ptr e) { update([&] { started = finished = true, error = std::move(e); }); }
  void finish(json r = nullptr) { update([&] { finished = true, result = std::move(r); }); }
  void push(std::string event) { update([&] { events.push_back(std::move(event)); }); }
  template <typename F>
  void update(F&& f) {
    {
      std::lock_guard lock(mu);
      f();
    }
    cv.notify_all();
  }
};

OpenAiService::OpenAiService(OpenAiOptions options)
    : opt_(std::move(options)), exec_(opt_.max_waiting, [this] {
        loaded_.reset();  // freed on the thread that allocated it
        platform::release_free_memory();
      }) {}

OpenAiService::~OpenAiService() { stopping_ = true; }

OpenAiService::Loaded& OpenAiService::model_for(const ServedModel& served) {
  if (loaded_ && loaded_->id == served.id) return *loaded_;
  if (loaded_) {
    loaded_.reset();  // free the previous model before loading the next one
    platform::release_free_memory();
  }
  loaded_ = std::make_unique<Loaded>(served, opt_.device, opt_.dtype);
  return *loaded_;
}

void OpenAiService::preload(const std::string& model) {
  const ServedModel served = opt_.resolve(model);
  auto x = std::make_shared<Exchange>();
  const bool accepted = exec_.try_submit([this, served, x](bool run) {
    try {
      if (!run) api_fail(503, "the server is stopping");
      model_for(served);
      x->finish();
    } catch (...) {
      x->fail(std::current_exception());
    }
  });
  LLMS_CHECK(accepted, "cannot load ", model, ": the generation queue is full");
  std::unique_lock lock(x->mu);
  x->cv.wait(lock, [&] { return x->finished; });
  if (x->error) std::rethrow_exception(x->error);
}

void OpenAiService::execute(const ServedModel& served, const Job& job, Exchange& x) {
  const Request& r = job.r;
  Loaded* m = nullptr;
  std::vector<std::int64_t> ids;
  infer::GenerationConfig g;
  std::vector<std::string> stops;
  try {
    m = &model_for(served);
    const model::CausalLM& lm = m->m.lm;
    if (job.chat) ids = m->builder.encode(job.conv);
    else
      for (auto t : m->m.tok->encode(job.prompt, true)) ids.push_back(t);
    if (ids.empty()) api_fail(400, "the prompt has no tokens");
    const std::int64_t room = lm.config().max_position_embeddings - static_cast<std::int64_t>(ids.size());
    if (room < 1)
      api_fail(400, "the prompt has ", ids.size(), " tokens; the model's context is ", lm.config().max_position_embeddings);
    // The model's (or experiment's) defaults; what the request gives overrides them.
    g = m->defaults;
    if (r.max_tokens) g.max_new_tokens = *r.max_tokens;
    g.max_new_tokens = std::min(g.max_new_tokens, room);
    g.min_new_tokens = std::min(g.min_new_tokens, g.max_new_tokens);
    if (r.temperature) {
      g.do_sample = *r.temperature > 0;
      if (g.do_sample) g.temperature = *r.temperature;
    }
    if (r.top_p) g.top_p = *r.top_p;
    if (r.seed) g.seed = r.seed;
    g.validate();
    stops = m->stops;
    stops.insert(stops.end(), r.stop.begin(), r.stop.end());
  } catch (...) {
    x.fail(std::current_exception());
    return;
  }
  x.start();

  const bool chat = job.chat;
  const std::string id = std::string(chat ? "chatcmpl-" : "cmpl-") + new_id("x").substr(2);
  const std::int64_t created = unix_now();
  const std::string& model_id = m->id;
  auto stop_if_cancelled = [&] {
    if (x.cancelled || stopping_) throw Cancelled{};
  };
  if (!r.stream) {
    try {
      auto out = infer::generate_text(m->m.lm, *m->m.tok, {ids}, g, stops,
                                      [&](std::size_t, std::string_view) { stop_if_cancelled(); });
      json choice = {{"index", 0}, {"finish_reason", openai_finish_reason(out[0].finish_reason)}};
      if (chat) choice["message"] = {{"role", "assistant"}, {"content", out[0].text}};
      else choice["text"] = out[0].text, choice["logprobs"] = nullptr;
      const auto n_prompt = static_cast<std::int64_t>(ids.size()), n_out = static_cast<std::int64_t>(out[0].tokens.size());
      x.finish({{"id", id}, {"object", chat ? "chat.completion" : "text_completion"}, {"created", created},
                {"model", model_id}, {"choices", json::array({choice})},
                {"usage", {{"prompt_tokens", n_prompt}, {"completion_tokens", n_out}, {"total_tokens", n_prompt + n_out}}}});
    } catch (const Cancelled&) {
      x.fail(std::make_exception_ptr(ApiError(503, "the server is stopping; the generation was cut short")));
    } catch (...) {
      x.fail(std::current_exception());
    }
    return;
  }
  const std::string chunk_object = chat ? "chat.completion.chunk" : "text_completion";
  auto chunk = [&](json delta_or_text, json finish) {
    json c = {{"index", 0}, {"finish_reason", std::move(finish)}};
    if (chat) c["delta"] = std::move(delta_or_text);
    else c["text"] = std::move(delta_or_text), c["logprobs"] = nullptr;
    return sse({{"id", id}, {"object", chunk_object}, {"created", created}, {"model", model_id}, {"choices", json::array({c})}});
  };
  try {
    if (chat) x.push(chunk(json{{"role", "assistant"}, {"content", ""}}, nullptr));
    auto out = infer::generate_text(m->m.lm, *m->m.tok, {ids}, g, stops, [&](std::size_t, std::string_view text) {
      stop_if_cancelled();
      x.push(chunk(chat ? json{{"content", std::string(text)}} : json(std::string(text)), nullptr));
    });
    x.push(chunk(chat ? json::object() : json(""), openai_finish_reason(out[0].finish_reason)));
  } catch (const Cancelled&) {
    // The client is gone (nothing more to send) or the server is stopping.
  } catch (const std::exception& e) {
    x.push(sse({{"error", {{"message", e.what()}, {"code", 500}}}}));
  }
  x.push("data: [DONE]\n\n");
  x.finish();
}

void OpenAiService::completion(const httplib::Request& http_req, httplib::Response& res, bool chat) {
  const json body = parse_json_body(http_req);
  auto job = std::make_shared<Job>();
  job->chat = chat;
  job->r = parse_common(body, opt_.max_tokens_limit);
  if (chat) {
    job->conv = parse_messages(body);
  } else {
    auto it = body.find("prompt");
    if (it != body.end() && it->is_array() && it->size() == 1 && (*it)[0].is_string()) job->prompt = (*it)[0];
    else if (it != body.end() && it->is_string()) job->prompt = it->get<std::string>();
    else api_fail(400, "prompt: expected a string (or a list of one string)");
  }
  const ServedModel served = opt_.resolve(job->r.model);  // 404/409/403 before anything is queued
  auto x = std::make_shared<Exchange>();
  const bool accepted = exec_.try_submit([this, served, job, x](bool run) {
    if (run) execute(served, *job, *x);
    else x->fail(std::make_exception_ptr(ApiError(503, "the server is stopping")));
  });
  if (!accepted) {
    res.set_header("Retry-After", std::to_string(opt_.retry_after_s));
    api_fail(503, "the server is busy: one generation is running and ", opt_.max_waiting,
             " are waiting (the most it queues); retry in ", opt_.retry_after_s, " s");
  }
  {
    std::unique_lock lock(x->mu);
    x->cv.wait(lock, [&] { return job->r.stream ? x->started : x->finished; });
    if (x->error) std::rethrow_exception(x->error);
    if (!job->r.stream) return send_json(res, 200, x->result);
  }
  res.set_header("Cache-Control", "no-cache");
  res.set_header("X-Accel-Buffering", "no");
  res.set_chunked_content_provider(
      "text/event-stream",
      [x](std::size_t, httplib::DataSink& sink) {
        while (true) {
          std::string event;
          bool done = false;
          {
            std::unique_lock lock(x->mu);
            x->cv.wait_for(lock, std::chrono::seconds(1), [&] { return !x->events.empty() || x->finished; });
            if (!x->events.empty()) {
              event = std::move(x->events.front());
              x->events.pop_front();
            } else {
              done = x->finished;
            }
          }
          if (!event.empty() && !sink.write(event.data(), event.size())) break;
          if (done) {
            sink.done();
            return true;
          }
          if (event.empty() && !sink.is_writable()) break;  // a long prefill: notice a client that left
        }
        x->cancelled = true;  // the client is gone: the executor stops at the next token
        return false;
      },
      [x](bool) { x->cancelled = true; });
}

void OpenAiService::add_routes(Routes& svr) {
  svr.Get("/v1/models", guarded([this](const httplib::Request&, httplib::Response& res) {
    json data = json::array();
    for (const auto& id : opt_.list()) data.push_back({{"id", id}, {"object", "model"}, {"created", 0}, {"owned_by", "llmstudio"}});
    send_json(res, 200, {{"object", "list"}, {"data", data}});
  }));
  svr.Post("/v1/completions", guarded([this](const httplib::Request& req, httplib::Response& res) { completion(req, res, false); }));
  svr.Post("/v1/chat/completions",
           guarded([this](const httplib::Request& req, httplib::Response& res) { completion(req, res, true); }));
}

}  // namespace llmstudio::server
