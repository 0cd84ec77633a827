// What every route of the studio and of `llmstudio serve` shares: JSON responses and {"error": {"message",
// "code"}} errors, request-body parsing (400 for malformed JSON), the route wrapper that turns exceptions into
// those errors, and the server-wide guards installed on an httplib::Server: the access token (checked on every
// /api and /v1 route when one is configured; event streams may pass it as ?token=), body size limits (413),
// JSON bodies for httplib's own errors (404 unknown route, 413, 400), and a thread pool large enough for
// long-lived event streams.
#pragma once

#include <httplib.h>
#include <nlohmann/json.hpp>

#include <cstdint>
#include <functional>
#include <string>

namespace llmstudio::server {

struct HttpGuards {
  std::string token;                         // "" = no token required
  std::uint64_t max_json_bytes = 1 << 20;    // bodies of JSON routes
  std::uint64_t max_upload_bytes = 0;        // multipart uploads (POST /api/datasets); 0 = none allowed
  std::string upload_path = "/api/datasets";
  int threads = 32;
};

// Installs the guards on `svr` (pre-routing auth and size checks, error and exception handlers, thread pool).
void install_guards(httplib::Server& svr, const HttpGuards& guards);

void send_json(httplib::Response& res, int status, const nlohmann::json& body);
void send_error(httplib::Response& res, int status, const std::string& message);

// The request body as a JSON object; ApiError 400 for malformed JSON or a non-object, 413 above max_bytes.
nlohmann::json parse_json_body(const httplib::Request& req, std::uint64_t max_bytes = 1 << 20);
// Typed accessors for request fields: ApiError 400 naming the field for a wrong type; `fallback` if absent/null.
std::string json_string(const nlohmann::json& body, const char* key, const std::string& fallback = "");
std::int64_t json_int(const nlohmann::json& body, const char* key, std::int64_t fallback);
double json_number(const nlohmann::json& body, const char* key, double fallback);
bool json_bool(const nlohmann::json& body, const char* key, bool fallback);
// A query parameter as an integer; ApiError 400 if it is not one.
std::int64_t query_int(const httplib::Request& req, const char* key, std::int64_t fallback);

// Wraps a route handler: ApiError -> its status, other llmstudio::Error -> 400, anything else -> 500, all as
// JSON errors.
using Handler = std::function<void(const httplib::Request&, httplib::Response&)>;
Handler guarded(Handler h);
using ReaderHandler = std::function<void(const httplib::Request&, httplib::Response&, const httplib::ContentReader&)>;
ReaderHandler guarded(ReaderHandler h);

// Whether a --host value is a loopback address (127.0.0.0/8, ::1, localhost).
bool is_loopback_host(const std::string& host);

}  // namespace llmstudio::server
