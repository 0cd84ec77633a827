// Shared HTTP plumbing of the studio and `llmstudio serve` (see http_util.h).
#include "llmstudio/server/http_util.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <exception>

#include "llmstudio/io/json_text.h"
#include "llmstudio/server/api_error.h"
#include "llmstudio/server/http_server.h"

namespace llmstudio::server {
using nlohmann::json;

namespace {

bool has_body(const httplib::Request& req) {
  return (req.has_header("Content-Length") && req.get_header_value("Content-Length") != "0") ||
         req.has_header("Transfer-Encoding");
}

bool needs_token(const std::string& path) {
  return path == "/api" || path == "/v1" || path.rfind("/api/", 0) == 0 || path.rfind("/v1/", 0) == 0;
}

// Constant-time comparison (the token is a secret).
bool same_secret(const std::string& a, const std::string& b) {
  unsigned char diff = a.size() == b.size() ? 0 : 1;
  for (std::size_t i = 0; i < a.size(); ++i) diff |= static_cast<unsigned char>(a[i] ^ (i < b.size() ? b[i] : 0));
  return diff == 0;
}

const char* status_text(int status) {
  switch (status) {
    case 400: return "bad request";
    case 401: return "missing or wrong access token";
    case 403: return "forbidden";
    case 404: return "not found";
    case 405: return "method not allowed";
    case 409: return "conflict";
    case 413: return "request body too large";
    case 414: return "request URI too long";
    case 415: return "unsupported media type";
    case 416: return "range not satisfiable";
    default: return status >= 500 ? "internal server error" : "request failed";
  }
}

void handle_exception(httplib::Response& res, std::exception_ptr ep) {
  try {
    std::rethrow_exception(ep);
  } catch (const ApiError& e) {
    send_error(res, e.status(), e.what());
    if (e.status() == 503 && !res.has_header("Retry-After")) res.set_header("Retry-After", "5");
  } catch (const Error& e) {
    send_error(res, 400, e.what());
  } catch (const json::exception& e) {
    send_error(res, 400, std::string("invalid request: ") + e.what());
  } catch (const std::exception& e) {
    send_error(res, 500, std::string("internal error: ") + e.what());
  } catch (...) {
    send_error(res, 500, "internal error");
  }
}

}  // namespace

void send_json(httplib::Response& res, int status, const json& body) {
  res.status = status;
  res.set_content(body.dump(-1, ' ', false, json::error_handler_t::replace), "application/json");
}

void send_error(httplib::Response& res, int status, const std::string& message) {
  send_json(res, status, {{"error", {{"message", message}, {"code", status}}}});
}

json parse_json_body(const httplib::Request& req, std::uint64_t max_bytes) {
  if (req.body.size() > max_bytes)
    api_fail(413, "request body of ", req.body.size(), " bytes is larger than the limit of ", max_bytes, " bytes");
  if (req.body.empty()) return json::object();
  json j;
  try {
    j = io::parse_json(req.body, "request body");  // nesting limited: deep values would overflow the stack
  } catch (const Error& e) {
    api_fail(400, e.what());
  }
  if (!j.is_object()) api_fail(400, "request body must be a JSON object, got ", j.type_name());
  return j;
}

std::string json_string(const json& body, const char* key, const std::string& fallback) {
  auto it = body.find(key);
  if (it == body.end() || it->is_null()) return fallback;
  if (!it->is_string()) api_fail(400, key, ": expected a string, got ", io::json_preview(*it));
  return it->get<std::string>();
}

std::int64_t json_int(const json& body, const char* key, std::int64_t fallback) {
  auto it = body.find(key);
  if (it == body.end() || it->is_null()) return fallback;
  if (!it->is_number_integer()) api_fail(400, key, ": expected an integer, got ", io::json_preview(*it));
  return it->get<std::int64_t>();
}

double json_number(const json& body, const char* key, double fallback) {
  auto it = body.find(key);
  if (it == body.end() || it->is_null()) return fallback;
  if (!it->is_number()) api_fail(400, key, ": expected a number, got ", io::json_preview(*it));
  return it->get<double>();
}

bool json_bool(const json& body, const char* key, bool fallback) {
  auto it = body.find(key);
  if (it == body.end() || it->is_null()) return fallback;
  if (!it->is_boolean()) api_fail(400, key, ": expected true or false, got ", io::json_preview(*it));
  return it->get<bool>();
}

std::int64_t query_int(const httplib::Request& req, const char* key, std::int64_t fallback) {
  if (!req.has_param(key)) return fallback;
  const std::string v = req.get_param_value(key);
  std::int64_t out = 0;
  auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), out);
  if (ec != std::errc() || p != v.data() + v.size()) api_fail(400, key, ": expected an integer, got \"", v, "\"");
  return out;
}

Handler guarded(Handler h) {
  return [h = std::move(h)](const httplib::Request& req, httplib::Response& res) {
    try {
      h(req, res);
    } catch (...) {
      handle_exception(res, std::current_exception());
    }
  };
}

ReaderHandler guarded(ReaderHandler h) {
  return [h = std::move(h)](const httplib::Request& req, httplib::Response& res, const httplib::ContentReader& r) {
    try {
      h(req, res, r);
    } catch (...) {
      handle_exception(res, std::current_exception());
    }
  };
}

void RouteMethods::add(const std::string& method, const std::string& pattern) {
  const bool literal = pattern.find_first_of("()[]{}*+?.\\|^$") == std::string::npos;
  routes_.push_back({method, pattern, std::regex(pattern), literal});
}

bool RouteMethods::literal_path(const std::string& path) const {
  return std::any_of(routes_.begin(), routes_.end(), [&](const Route& r) { return r.literal && r.pattern == path; });
}

std::string RouteMethods::allowed(const std::string& path) const {
  const bool literal = literal_path(path);
  std::vector<std::string> methods;
  for (const auto& r : routes_) {
    if ((literal ? !(r.literal && r.pattern == path) : !std::regex_match(path, r.re)) ||
        std::find(methods.begin(), methods.end(), r.method) != methods.end())
      continue;
    methods.push_back(r.method);
    if (r.method == "GET") methods.push_back("HEAD");
  }
  std::sort(methods.begin(), methods.end());
  std::string out;
  for (const auto& m : methods) out += (out.empty() ? "" : ", ") + m;
  return out;
}

bool RouteMethods::literal_path_allows(const std::string& path, const std::string& method) const {
  if (!literal_path(path)) return true;
  const std::string m = method == "HEAD" ? "GET" : method;
  return std::any_of(routes_.begin(), routes_.end(),
                     [&](const Route& r) { return r.literal && r.pattern == path && r.method == m; });
}

Routes& Routes::Get(const std::string& pattern, Handler h) {
  methods_.add("GET", pattern);
  svr_.Get(pattern, std::move(h));
  return *this;
}

Routes& Routes::Post(const std::string& pattern, Handler h) {
  methods_.add("POST", pattern);
  svr_.Post(pattern, std::move(h));
  return *this;
}

Routes& Routes::Post(const std::string& pattern, ReaderHandler h) {
  methods_.add("POST", pattern);
  svr_.Post(pattern, std::move(h));
  return *this;
}

Routes& Routes::Delete(const std::string& pattern, Handler h) {
  methods_.add("DELETE", pattern);
  svr_.Delete(pattern, std::move(h));
  return *this;
}

bool refuse_unsatisfiable_range(const httplib::Request& req, httplib::Response& res, std::uint64_t size) {
  if (req.ranges.size() != 1) return false;
  auto& [first, last] = const_cast<httplib::Request&>(req).ranges[0];  // process_request's own, non-const object
  const auto n = static_cast<ssize_t>(size);
  const bool ok = first >= 0 ? first < n && (last < 0 || last >= first) : last > 0 && n > 0;  // "-N": the last N
  if (ok) {
    if (last >= n) last = n - 1;  // httplib would announce (and ask the provider for) bytes past the end
    return false;
  }
  send_error(res, 416, "range " + req.get_header_value("Range").substr(0, 100) + " is outside the " +
                           std::to_string(size) + " bytes");
  res.set_header("Content-Range", "bytes */" + std::to_string(size));
  return true;
}

namespace {

std::string lower_trimmed(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.pop_back();
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.erase(0, 1);
  return s;
}


// The access token of a request: Authorization: Bearer, or ?token= on the routes that allow it.
std::string given_token(const httplib::Request& req, const std::regex& query_token_routes) {
  const std::string auth = req.get_header_value("Authorization");
  if (auth.rfind("Bearer ", 0) == 0) return auth.substr(7);
  if ((req.method == "GET" || req.method == "HEAD") && req.has_param("token") && std::regex_match(req.path, query_token_routes))
    return req.get_param_value("token");
  return "";
}

// The first reason to refuse `req` on its headers alone (request policy, token, transfer encoding, length),
// written into `res` (status > 0); 0 when it may proceed.
int refuse_on_headers(const HttpGuards& g, const std::regex& query_token_routes, const httplib::Request& req,
                      httplib::Response& res) {
  const std::string host = req.get_header_value("Host"), type = req.get_header_value("Content-Type");
  const std::optional<std::string> origin =
      req.has_header("Origin") ? std::optional<std::string>(req.get_header_value("Origin")) : std::nullopt;
  RequestFacts facts{req.method, host, type, std::nullopt, has_body(req)};
  if (origin) facts.origin = *origin;
  if (const auto verdict = check_request(g.origin, facts); !verdict) {
    send_error(res, verdict.status, verdict.message);
    return verdict.status;
  }
  // A CORS preflight never carries credentials: answered (204) for the --allow-origin apps without a token.
  const bool preflight = req.method == "OPTIONS" && origin && listed_origin(*origin, g.origin.allowed_origins);
  if (!g.token.empty() && needs_token(req.path) && !preflight) {
    const std::string given = given_token(req, query_token_routes);
    if (given.empty() || !same_secret(given, g.token)) {
      res.set_header("WWW-Authenticate", "Bearer");
      send_error(res, 401, given.empty() ? "this server needs an access token: send Authorization: Bearer <token>"
                                         : "wrong access token");
      return 401;
    }
  }
  if (req.has_header("Transfer-Encoding")) {
    if (lower_trimmed(req.get_header_value("Transfer-Encoding")) != "chunked" || req.has_header("Content-Length")) {
      send_error(res, 400, "unsupported Transfer-Encoding \"" + req.get_header_value("Transfer-Encoding").substr(0, 100) +
                               "\": send a Content-Length, or Transfer-Encoding: chunked alone");
      return 400;
    }
  }
  if (req.has_header("Content-Length")) {
    const bool upload = req.method == "POST" && req.path == g.upload_path;
    const std::string v = req.get_header_value("Content-Length");
    std::uint64_t len = 0;
    auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), len);
    if (ec != std::errc() || p != v.data() + v.size()) {
      send_error(res, 400, "invalid Content-Length header");
      return 400;
    }
    // Bodies up to the payload limit are read (so the client reads the 413 rather than a reset connection)
    // and refused by parse_json_body or the upload handler; absurd ones are refused before reading.
    if (!upload && len > std::max<std::uint64_t>(g.max_json_bytes, 64u << 20)) {
      send_error(res, 413, "request body of " + std::to_string(len) + " bytes is larger than the limit of " +
                               std::to_string(g.max_json_bytes) + " bytes");
      return 413;
    }
  }
  return 0;
}

// A refused request's body is never read: its connection ends after the response.
void end_connection_if_body_unread(const httplib::Request& req, httplib::Response& res) {
  if (!has_body(req)) return;
  res.set_header("Connection", "close");
  close_connection_after_response();
}

bool reads_body(const std::string& m) { return m == "POST" || m == "PUT" || m == "PATCH" || m == "DELETE"; }

bool standard_method(const std::string& m) {
  return m == "GET" || m == "HEAD" || m == "POST" || m == "PUT" || m == "PATCH" || m == "DELETE" || m == "OPTIONS";
}

}  // namespace

void install_guards(httplib::Server& svr, const HttpGuards& g) {
  // Chunked bodies have no Content-Length to check up front: httplib stops them at this size (413).
  svr.set_payload_max_length(static_cast<std::size_t>(std::max(g.max_json_bytes, g.max_upload_bytes + (1u << 20))));
  const auto query_token_routes = std::make_shared<std::regex>(g.query_token_routes);
  svr.set_pre_routing_handler([g, query_token_routes](const httplib::Request& req, httplib::Response& res) {
    if (refuse_on_headers(g, *query_token_routes, req, res)) {
      end_connection_if_body_unread(req, res);
      return httplib::Server::HandlerResponse::Handled;
    }
    // httplib reads bodies of POST/PUT/PATCH/DELETE only: another method's body would be parsed as the next request.
    if (!reads_body(req.method)) end_connection_if_body_unread(req, res);
    // CORS for the --allow-origin web apps (the studio's own UI is same-origin and needs none).
    const std::string origin = req.get_header_value("Origin");
    if (!origin.empty() && listed_origin(origin, g.origin.allowed_origins)) {
      res.set_header("Access-Control-Allow-Origin", origin);
      res.set_header("Vary", "Origin");
      if (req.method == "OPTIONS") {
        res.set_header("Access-Control-Allow-Methods", "GET, POST, DELETE");
        res.set_header("Access-Control-Allow-Headers", "Authorization, Content-Type");
        res.set_header("Access-Control-Max-Age", "600");
        res.status = 204;
        return httplib::Server::HandlerResponse::Handled;
      }
    }
    if (g.routes && !g.routes->literal_path_allows(req.path, req.method)) {
      const std::string allow = g.routes->allowed(req.path);
      res.set_header("Allow", allow);
      send_error(res, 405, "method " + req.method + " is not allowed on " + req.path + "; allowed: " + allow);
      end_connection_if_body_unread(req, res);
      return httplib::Server::HandlerResponse::Handled;
    }
    return httplib::Server::HandlerResponse::Unhandled;
  });
  // Expect: 100-continue: the same checks answer before the client sends its body.
  svr.set_expect_100_continue_handler([g, query_token_routes](const httplib::Request& req, httplib::Response& res) {
    if (!refuse_on_headers(g, *query_token_routes, req, res)) return 100;
    end_connection_if_body_unread(req, res);
    return res.status;
  });
  svr.set_error_handler([routes = g.routes](const httplib::Request& req, httplib::Response& res) {
    // An error body is never cut to a Range (the request object is process_request's own, not const).
    const_cast<httplib::Request&>(req).ranges.clear();
    if (!res.body.empty() || res.content_length_ > 0 || res.content_provider_) return;
    // httplib refuses a method it does not know (QUERY, FOO) in the request line, before reading the headers and
    // setting req.path: answer for the target's path and end the connection (the headers are still unread).
    const bool unknown_method = res.status == 400 && !req.method.empty() && !standard_method(req.method);
    if (unknown_method || (res.status == 400 && req.path.empty())) {  // any request line httplib refused
      res.set_header("Connection", "close");
      close_connection_after_response();
    }
    if (res.status == 404 || unknown_method) {
      const std::string path = unknown_method ? req.target.substr(0, req.target.find_first_of("?#")) : req.path;
      if (const std::string allow = routes ? routes->allowed(path) : ""; !allow.empty()) {
        res.set_header("Allow", allow);
        return send_error(res, 405, "method " + req.method.substr(0, 20) + " is not allowed on " + path +
                                        "; allowed: " + allow);
      }
      return send_error(res, 404, "no route " + req.method.substr(0, 20) + " " + path);
    }
    send_error(res, res.status, status_text(res.status));
  });
  svr.set_exception_handler([](const httplib::Request&, httplib::Response& res, std::exception_ptr ep) {
    handle_exception(res, ep);
  });
}

}  // namespace llmstudio::server
