// The request policy of the studio and `llmstudio serve` against cross-site request forgery and DNS rebinding,
// as pure functions of a request's method and headers (no httplib, so unit tests and fuzzers link it alone):
//  - every request names this server in its Host header: a loopback name (localhost, a 127.x.y.z literal,
//    [::1]) or the bound address, with the bound port; when bound to a wildcard address (0.0.0.0, ::), also any
//    IP literal, since a rebound DNS name can never produce one, and with any port (a container's port may be
//    remapped); or a name given with --allowed-host ("name" any port, "name:port" that port). Else 403.
//  - state-changing methods (POST, PUT, PATCH, DELETE) carry an Origin that is absent (not a browser), this
//    server's own (http(s)://<the accepted Host>) or one given with --allow-origin; else 403. With a body, their
//    Content-Type is application/json or multipart/form-data (the types a cross-site form or a "simple" fetch
//    cannot send); else 415. A request without a body needs no type (POST .../start).
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace llmstudio::server {

struct OriginPolicy {
  std::string bound_host = "127.0.0.1";      // --host
  int port = 0;                              // the listening port; 0 = any port (tests)
  std::vector<std::string> allowed_hosts;    // --allowed-host: "name" or "name:port"
  std::vector<std::string> allowed_origins;  // --allow-origin: "scheme://host[:port]"
};

// Exactly: "localhost", an IPv4 literal 127.a.b.c (four decimal parts 0-255), "::1" or "[::1]".
bool is_loopback_host(std::string_view host);
// Whether `host` is an IPv4 literal a.b.c.d or an IPv6 literal (bare or in brackets).
bool is_ip_literal(std::string_view host);

// A Host header split into its name (lowercase; IPv6 keeps its brackets) and port (nullopt when absent);
// nullopt for a malformed one.
struct HostPort {
  std::string name;
  std::optional<int> port;
};
std::optional<HostPort> parse_host_header(std::string_view value);

struct PolicyVerdict {
  int status = 0;  // 0 = allowed, else 403 or 415
  std::string message;
  explicit operator bool() const { return status == 0; }
};

struct RequestFacts {
  std::string_view method, host, content_type;
  std::optional<std::string_view> origin;  // nullopt = no Origin header
  bool has_body = false;
};

PolicyVerdict check_request(const OriginPolicy& policy, const RequestFacts& request);
// Whether `origin` is one of the --allow-origin entries (case-insensitive, a trailing "/" ignored).
bool listed_origin(std::string_view origin, const std::vector<std::string>& allowed);

}  // namespace llmstudio::server
