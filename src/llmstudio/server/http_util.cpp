// Shared HTTP plumbing of the studio and `llmstudio serve` (see http_util.h).
#include "llmstudio/server/http_util.h"

#include <charconv>
#include <exception>

#include "llmstudio/io/json_text.h"
#include "llmstudio/server/api_error.h"

namespace llmstudio::server {
using nlohmann::json;

namespace {

// A request with a body that failed the token check: the pre-routing handler lets httplib read (drain) the body
// first, so that the keep-alive connection stays in step, and the route wrapper answers 401 instead of running.
// Pre-routing and the handler run on the same worker thread.
thread_local std::string t_auth_error;

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

bool is_loopback_host(const std::string& host) {
  return host == "localhost" || host == "::1" || host == "[::1]" || host.rfind("127.", 0) == 0;
}

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
    if (!t_auth_error.empty()) {
      res.set_header("WWW-Authenticate", "Bearer");
      return send_error(res, 401, t_auth_error);
    }
    try {
      h(req, res);
    } catch (...) {
      handle_exception(res, std::current_exception());
    }
  };
}

ReaderHandler guarded(ReaderHandler h) {
  return [h = std::move(h)](const httplib::Request& req, httplib::Response& res, const httplib::ContentReader& r) {
    if (!t_auth_error.empty()) {
      const auto discard = [](const char*, std::size_t) { return true; };
      if (req.is_multipart_form_data()) r([](const httplib::MultipartFormData&) { return true; }, discard);
      else r(discard);
      res.set_header("WWW-Authenticate", "Bearer");
      return send_error(res, 401, t_auth_error);
    }
    try {
      h(req, res, r);
    } catch (...) {
      handle_exception(res, std::current_exception());
    }
  };
}

void install_guards(httplib::Server& svr, const HttpGuards& g) {
  const int threads = g.threads;
  svr.new_task_queue = [threads] { return new httplib::ThreadPool(static_cast<std::size_t>(threads)); };
  // Chunked bodies have no Content-Length to check up front: httplib stops them at this size (413).
  svr.set_payload_max_length(static_cast<std::size_t>(std::max(g.max_json_bytes, g.max_upload_bytes + (1u << 20))));
  svr.set_pre_routing_handler([g](const httplib::Request& req, httplib::Response& res) {
    t_auth_error.clear();
    if (!g.token.empty() && needs_token(req.path)) {
      std::string given;
      const std::string auth = req.get_header_value("Authorization");
      if (auth.rfind("Bearer ", 0) == 0) given = auth.substr(7);
      else if (req.method == "GET" && req.has_param("token")) given = req.get_param_value("token");
      if (given.empty() || !same_secret(given, g.token)) {
        const std::string msg = given.empty() ? "this server needs an access token: send Authorization: Bearer <token>"
                                              : "wrong access token";
        if (has_body(req)) {
          t_auth_error = msg;  // answered by the route wrapper once httplib has read the body
        } else {
          res.set_header("WWW-Authenticate", "Bearer");
          send_error(res, 401, msg);
          return httplib::Server::HandlerResponse::Handled;
        }
      }
    }
    if (req.has_header("Content-Length")) {
      const bool upload = req.method == "POST" && req.path == g.upload_path;
      const std::string v = req.get_header_value("Content-Length");
      std::uint64_t len = 0;
      auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), len);
      if (ec != std::errc() || p != v.data() + v.size()) {
        send_error(res, 400, "invalid Content-Length header");
        return httplib::Server::HandlerResponse::Handled;
      }
      // Bodies up to the payload limit are read (so the client reads the 413 rather than a reset connection)
      // and refused by parse_json_body or the upload handler; absurd ones are refused before reading.
      if (!upload && len > std::max<std::uint64_t>(g.max_json_bytes, 64u << 20)) {
        send_error(res, 413, "request body of " + std::to_string(len) + " bytes is larger than the limit of " +
                                 std::to_string(g.max_json_bytes) + " bytes");
        res.set_header("Connection", "close");
        return httplib::Server::HandlerResponse::Handled;
      }
    }
    return httplib::Server::HandlerResponse::Unhandled;
  });
  svr.set_error_handler([](const httplib::Request& req, httplib::Response& res) {
    if (!t_auth_error.empty() && res.status == 404) {  // an unknown route, but the token is the first problem
      res.set_header("WWW-Authenticate", "Bearer");
      return send_error(res, 401, t_auth_error);
    }
    if (!res.body.empty() || res.content_length_ > 0 || res.content_provider_) return;
    std::string msg = status_text(res.status);
    if (res.status == 404) msg = "no route " + req.method + " " + req.path;
    send_error(res, res.status, msg);
  });
  svr.set_exception_handler([](const httplib::Request&, httplib::Response& res, std::exception_ptr ep) {
    handle_exception(res, ep);
  });
}

}  // namespace llmstudio::server
