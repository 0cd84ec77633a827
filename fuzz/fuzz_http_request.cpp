// libFuzzer target for the HTTP request path of the studio and `llmstudio serve`: the input is the bytes a
// client sends on one keep-alive connection, fed through httplib's request parser (Server::process_request on an
// in-memory stream) with the real guards (install_guards: request policy, token, lengths, 405s, error bodies) and
// the real request normalisation (prepare_request), to stand-in routes that use the same torch-free helpers as the
// real ones: parse_json_body and json_string/json_int/json_number/json_bool, query_int, multipart reading through
// a ContentReader, the UI assets with Range, and a ranged content provider like the .tar download.
// Two servers take each input: one with an access token ("fuzz-token") and one without.
// Checks: no crash or sanitizer report, every response starts with an HTTP/1.1 status line, no 5xx, and no
// response much larger than the largest thing the routes serve (no Range amplification).
#include <httplib.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "llmstudio/server/api_error.h"
#include "llmstudio/server/http_server.h"
#include "llmstudio/server/http_util.h"
#include "llmstudio/server/ui_assets.h"

namespace {

namespace srv = llmstudio::server;
using nlohmann::json;

constexpr std::size_t kProvidedSize = 100000;  // the stand-in download's size

[[noreturn]] void broken(const std::string& what, const std::string& out) {
  std::fprintf(stderr, "invariant broken: %s\n--- response (first 600 bytes) ---\n%s\n", what.c_str(),
               out.substr(0, 600).c_str());
  std::abort();
}

class MemoryStream : public httplib::Stream {
 public:
  explicit MemoryStream(std::string_view in) : in_(in) {}
  bool is_readable() const override { return pos_ < in_.size(); }
  bool is_writable() const override { return true; }
  ssize_t read(char* ptr, size_t size) override {
    const std::size_t n = std::min(size, in_.size() - pos_);
    std::copy_n(in_.data() + pos_, n, ptr);
    pos_ += n;
    return static_cast<ssize_t>(n);
  }
  ssize_t write(const char* ptr, size_t size) override {
    out_.append(ptr, size);
    return static_cast<ssize_t>(size);
  }
  void get_remote_ip_and_port(std::string& ip, int& port) const override { ip = "127.0.0.1", port = 40000; }
  void get_local_ip_and_port(std::string& ip, int& port) const override { ip = "127.0.0.1", port = 10101; }
  socket_t socket() const override { return 0; }
  bool done() const { return pos_ >= in_.size(); }
  std::string take() { return std::exchange(out_, {}); }

 private:
  std::string_view in_;
  std::size_t pos_ = 0;
  std::string out_;
};

void add_routes(httplib::Server& server, srv::RouteMethods& methods) {
  srv::Routes r(server, methods);
  r.Get("/api/health", srv::guarded([](const httplib::Request&, httplib::Response& res) {
    srv::send_json(res, 200, {{"ok", true}});
  }));
  r.Post("/api/datasets/import", srv::guarded([](const httplib::Request& req, httplib::Response& res) {
    const json body = srv::parse_json_body(req);
    const std::string path = srv::json_string(body, "path");
    if (path.empty()) srv::api_fail(400, "path: required");
    srv::send_json(res, 201, {{"path", path}, {"name", srv::json_string(body, "name")}});
  }));
  r.Post("/api/experiments", srv::guarded([](const httplib::Request& req, httplib::Response& res) {
    const json body = srv::parse_json_body(req);
    json out = {{"dataset_id", srv::json_string(body, "dataset_id")}, {"start", srv::json_bool(body, "start", false)}};
    if (body.contains("config") && body["config"].is_object())
      for (const auto& [section, fields] : body["config"].items())
        if (fields.is_object())
          for (const auto& [key, value] : fields.items()) {
            if (value.is_number_integer()) out[key] = srv::json_int(fields, key.c_str(), 0);
            else if (value.is_number()) out[key] = srv::json_number(fields, key.c_str(), 0);
            else if (value.is_boolean()) out[key] = srv::json_bool(fields, key.c_str(), false);
            else out[key] = srv::json_string(fields, key.c_str());
          }
    srv::send_json(res, 201, out);
  }));
  r.Post("/api/datasets", srv::guarded([](const httplib::Request& req, httplib::Response& res,
                                          const httplib::ContentReader& reader) {
    if (!req.is_multipart_form_data()) {
      reader([](const char*, std::size_t) { return true; });
      srv::api_fail(400, "expects multipart/form-data");
    }
    std::string current, name;
    std::size_t file_bytes = 0, parts = 0;
    const bool ok = reader(
        [&](const httplib::MultipartFormData& part) {
          current = part.name;
          return ++parts <= 8;
        },
        [&](const char* data, std::size_t n) {
          if (current == "file") file_bytes += n;
          if (current != "name") return true;
          if (name.size() + n > 1024) return false;
          name.append(data, n);
          return true;
        });
    if (!ok) srv::api_fail(400, "malformed multipart/form-data body");
    srv::send_json(res, 201, {{"bytes", file_bytes}, {"name", name}, {"parts", parts}});
  }));
  r.Get(R"(/api/datasets/([^/]+)/rows)", srv::guarded([](const httplib::Request& req, httplib::Response& res) {
    srv::send_json(res, 200, {{"id", std::string(req.matches[1])}, {"offset", srv::query_int(req, "offset", 0)},
                              {"limit", srv::query_int(req, "limit", 50)}});
  }));
  r.Delete(R"(/api/datasets/([^/]+))", srv::guarded([](const httplib::Request&, httplib::Response& res) {
    res.status = 204;
  }));
  r.Get(R"(/api/experiments/([^/]+)/exports/([^/]+)\.tar)", srv::guarded([](const httplib::Request& req,
                                                                              httplib::Response& res) {
    if (srv::refuse_unsatisfiable_range(req, res, kProvidedSize)) return;
    res.set_content_provider(kProvidedSize, "application/x-tar",
                             [](std::size_t offset, std::size_t length, httplib::DataSink& sink) {
                               std::string chunk(std::min<std::size_t>(length, 4096), '\0');
                               for (std::size_t i = 0; i < chunk.size(); ++i) chunk[i] = static_cast<char>((offset + i) % 251);
                               return sink.write(chunk.data(), chunk.size());
                             });
  }));
  const auto ui = srv::guarded([](const httplib::Request& req, httplib::Response& res) {
    const srv::UiAsset* a = srv::find_ui_asset(req.path);
    if (!a) srv::api_fail(404, "no UI file ", req.path);
    if (srv::refuse_unsatisfiable_range(req, res, a->body.size())) return;
    res.set_content(a->body.data(), a->body.size(), std::string(a->content_type));
  });
  r.Get("/", ui);
  r.Get(R"(/ui(/.*)?)", ui);
  // Stand-ins for the /v1 routes (OpenAiService needs torch): the same body parsing before any generation.
  r.Get("/v1/models", srv::guarded([](const httplib::Request&, httplib::Response& res) {
    srv::send_json(res, 200, {{"object", "list"}, {"data", json::array()}});
  }));
  for (const char* route : {"/v1/completions", "/v1/chat/completions"})
    r.Post(route, srv::guarded([](const httplib::Request& req, httplib::Response& res) {
      const json body = srv::parse_json_body(req);
      srv::send_json(res, 200, {{"model", srv::json_string(body, "model")}, {"stream", srv::json_bool(body, "stream", false)},
                                {"max_tokens", srv::json_int(body, "max_tokens", 16)}});
    }));
}

const char* kRangePaths = R"(/|/index\.html|/ui(/.*)?|/api/experiments/[^/]+/exports/[^/]+\.tar)";

class FuzzServer : public httplib::Server {
 public:
  explicit FuzzServer(const std::string& token) {
    srv::HttpGuards g;
    g.token = token;
    g.origin.port = 10101;
    g.origin.allowed_origins = {"http://localhost:5173"};
    g.max_upload_bytes = 1 << 20;
    g.query_token_routes = R"(/api/experiments/[^/]+/(events|exports/[^/]+\.tar))";
    srv::install_guards(*this, g);
    add_routes(*this, *g.routes);
    svr_sock_ = 1 << 20;  // "listening" (never a real descriptor): content providers run only while it is valid
  }

  std::size_t max_response() const {
    std::size_t m = kProvidedSize;
    for (const auto& a : srv::ui_assets()) m = std::max(m, a.body.size());
    return m + 16384;
  }

  void serve(std::string_view input) {
    MemoryStream strm(input);
    static const std::regex range_paths(kRangePaths);
    for (int i = 0; i < 8 && !strm.done(); ++i) {
      bool closed = false;
      const bool ok = process_request(strm, false, closed,
                                      [&](httplib::Request& req) { srv::prepare_request(req, range_paths); });
      const std::string out = strm.take();
      check(out);
      if (!ok || closed) break;
    }
  }

 private:
  void check(const std::string& out) const {
    if (out.empty()) return;  // nothing parsable: the connection just ends
    // A 100 Continue interim response may come first.
    std::size_t at = 0;
    while (out.compare(at, 25, "HTTP/1.1 100 Continue\r\n\r\n") == 0) at += 25;
    if (at == out.size()) return;
    if (out.compare(at, 9, "HTTP/1.1 ") != 0 || out.size() < at + 12) broken("no HTTP/1.1 status line", out);
    const int status = std::atoi(out.substr(at + 9, 3).c_str());
    if (status < 100 || status > 599) broken("bad status code", out);
    if (status >= 500) broken("server error " + std::to_string(status), out);
    if (out.size() > max_response()) broken("response of " + std::to_string(out.size()) + " bytes", out);
  }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static FuzzServer with_token("fuzz-token"), open_server("");
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  with_token.serve(input);
  open_server.serve(input);
  return 0;
}
