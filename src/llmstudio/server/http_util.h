// What every route of the studio and of `llmstudio serve` shares: JSON responses and {"error": {"message",
// "code"}} errors, request-body parsing (400 for malformed JSON), the route wrapper that turns exceptions into
// those errors, and the server-wide guards installed on an httplib::Server, all checked on the headers before any
// body is read: the request policy against CSRF and DNS rebinding (request_policy.h: Host, Origin, body type;
// 403/415), the access token (every /api and /v1 route when one is configured; ?token= only on the routes a
// browser fetches by itself; 401), body size limits (413) and transfer encodings; JSON bodies for httplib's own
// errors (404 unknown route, 405 + Allow for a known route with another method, 413, 400); Retry-After on 503.
#pragma once

#include <httplib.h>
#include <nlohmann/json.hpp>

#include <cstdint>
#include <functional>
#include <memory>
#include <regex>
#include <string>
#include <utility>
#include <vector>

#include "llmstudio/server/request_policy.h"

namespace llmstudio::server {

// Which methods each route pattern answers, so that a known path asked with another method is a 405 with an
// Allow header rather than a 404. Filled while routes are registered (Routes below), before the server listens.
// A literal route (no regex) owns its path: POST /api/datasets/import makes GET /api/datasets/import a 405, not a
// request for the dataset with id "import".
class RouteMethods {
 public:
  void add(const std::string& method, const std::string& pattern);
  // "GET, HEAD, POST" for a path some route matches; "" for an unknown path.
  std::string allowed(const std::string& path) const;
  // For a path that a literal route names: whether `method` is one of its methods (HEAD with GET); else true.
  bool literal_path_allows(const std::string& path, const std::string& method) const;

 private:
  struct Route {
    std::string method, pattern;
    std::regex re;
    bool literal;
  };
  std::vector<Route> routes_;
  bool literal_path(const std::string& path) const;
};

struct HttpGuards {
  std::string token;                         // "" = no token required
  OriginPolicy origin;                       // Host / Origin / body type rules
  std::uint64_t max_json_bytes = 1 << 20;    // bodies of JSON routes
  std::uint64_t max_upload_bytes = 0;        // multipart uploads (POST /api/datasets); 0 = none allowed
  std::string upload_path = "/api/datasets";
  // GET routes that may carry the token as ?token= (EventSource and download links cannot send headers).
  std::string query_token_routes = "$^";     // regex on the path; the default matches nothing
  std::shared_ptr<RouteMethods> routes = std::make_shared<RouteMethods>();
};

// Installs the guards on `svr` (pre-routing policy, auth and size checks; error and exception handlers).
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

// Registers routes on a server and their methods in a RouteMethods (for 405 + Allow).
class Routes {
 public:
  Routes(httplib::Server& svr, RouteMethods& methods) : svr_(svr), methods_(methods) {}
  Routes& Get(const std::string& pattern, Handler h);
  Routes& Post(const std::string& pattern, Handler h);
  Routes& Post(const std::string& pattern, ReaderHandler h);
  Routes& Delete(const std::string& pattern, Handler h);
  httplib::Server& server() { return svr_; }
  RouteMethods& methods() { return methods_; }

 private:
  httplib::Server& svr_;
  RouteMethods& methods_;
};

// A single Range on a body of `size` bytes that cannot be served: sets 416 with Content-Range: bytes */size and
// returns true. A satisfiable range (or none) returns false and leaves `res` alone; a range ending past the body is
// cut to its last byte (httplib would otherwise announce and ask a content provider for bytes past the end).
bool refuse_unsatisfiable_range(const httplib::Request& req, httplib::Response& res, std::uint64_t size);

}  // namespace llmstudio::server
