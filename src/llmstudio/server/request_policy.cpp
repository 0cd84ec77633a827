// CSRF / DNS-rebinding request policy (see request_policy.h).
#include "llmstudio/server/request_policy.h"

#include <algorithm>
#include <cctype>
#include <charconv>

namespace llmstudio::server {

namespace {

std::string lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// A decimal number of 1-`digits` digits no larger than `max`; nullopt otherwise.
std::optional<int> small_number(std::string_view s, std::size_t digits, int max) {
  if (s.empty() || s.size() > digits) return std::nullopt;
  int v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || p != s.data() + s.size() || v > max) return std::nullopt;
  return v;
}

bool is_ipv4(std::string_view s, bool loopback_only) {
  int parts = 0;
  while (true) {
    const auto dot = s.find('.');
    const auto part = s.substr(0, dot);
    const auto v = small_number(part, 3, 255);
    if (!v || (parts == 0 && loopback_only && *v != 127)) return false;
    ++parts;
    if (dot == std::string_view::npos) break;
    s.remove_prefix(dot + 1);
  }
  return parts == 4;
}

bool is_ipv6(std::string_view s) {
  if (s.size() >= 2 && s.front() == '[' && s.back() == ']') s = s.substr(1, s.size() - 2);
  if (s.size() < 2 || s.size() > 45 || s.find(':') == std::string_view::npos) return false;
  return std::all_of(s.begin(), s.end(), [](char c) { return std::isxdigit(static_cast<unsigned char>(c)) || c == ':' || c == '.'; });
}

bool is_wildcard(const std::string& host) { return host.empty() || host == "0.0.0.0" || host == "::" || host == "[::]"; }

// "::1" -> "[::1]" (the form a Host header uses), lowercase.
std::string host_form(std::string_view host) {
  std::string h = lower(host);
  if (h.find(':') != std::string::npos && h.front() != '[') h = "[" + h + "]";
  return h;
}

// name[:port] with the port left out when it is the scheme's default.
std::string canonical(const HostPort& hp, int default_port) {
  return hp.name + (hp.port && *hp.port != default_port ? ":" + std::to_string(*hp.port) : "");
}

bool same_origin(std::string_view origin, const HostPort& host) {
  const std::string o = lower(origin);
  for (const auto& [scheme, port] : {std::pair<std::string, int>{"http://", 80}, {"https://", 443}}) {
    if (o.rfind(scheme, 0) != 0) continue;
    const auto hp = parse_host_header(std::string_view(o).substr(scheme.size()));
    return hp && canonical(*hp, port) == canonical(host, port);
  }
  return false;
}

}  // namespace

bool listed_origin(std::string_view origin, const std::vector<std::string>& allowed) {
  const std::string o = lower(origin);
  return std::any_of(allowed.begin(), allowed.end(), [&](const std::string& a) {
    std::string x = lower(trim(a));
    while (!x.empty() && x.back() == '/') x.pop_back();
    return x == o;
  });
}

namespace {

// Bound to a wildcard address (a container, a LAN server), the port clients see may be remapped (docker -p 8080:10101).
bool port_ok(const OriginPolicy& p, const HostPort& hp) {
  return p.port == 0 || is_wildcard(p.bound_host) || hp.port.value_or(80) == p.port;
}

bool host_allowed(const OriginPolicy& p, const HostPort& hp) {
  if (is_loopback_host(hp.name) || hp.name == host_form(p.bound_host) || (is_wildcard(p.bound_host) && is_ip_literal(hp.name)))
    return port_ok(p, hp);
  return std::any_of(p.allowed_hosts.begin(), p.allowed_hosts.end(), [&](const std::string& entry) {
    const auto e = parse_host_header(trim(entry));
    return e && e->name == hp.name && (!e->port || *e->port == hp.port.value_or(80));
  });
}

bool state_changing(std::string_view method) {
  return method == "POST" || method == "PUT" || method == "PATCH" || method == "DELETE";
}

bool accepted_body_type(std::string_view content_type) {
  const std::string t = lower(trim(content_type.substr(0, content_type.find(';'))));
  return t == "application/json" || t == "multipart/form-data";
}

std::string quoted(std::string_view s) {
  std::string out = "\"";
  for (char c : s.substr(0, 200)) out += (static_cast<unsigned char>(c) < 0x20 || c == '"') ? '?' : c;
  return out + (s.size() > 200 ? "...\"" : "\"");
}

std::string server_url(const OriginPolicy& p) {
  const std::string host = is_wildcard(p.bound_host) || is_loopback_host(host_form(p.bound_host)) ? "127.0.0.1" : host_form(p.bound_host);
  return "http://" + host + (p.port ? ":" + std::to_string(p.port) : "");
}

}  // namespace

bool is_loopback_host(std::string_view host) {
  return host == "localhost" || host == "::1" || host == "[::1]" || is_ipv4(host, true);
}

bool is_ip_literal(std::string_view host) { return is_ipv4(host, false) || is_ipv6(host); }

std::optional<HostPort> parse_host_header(std::string_view value) {
  value = trim(value);
  if (value.empty() || value.size() > 255) return std::nullopt;
  HostPort hp;
  std::string_view rest;
  if (value.front() == '[') {
    const auto close = value.find(']');
    if (close == std::string_view::npos || !is_ipv6(value.substr(0, close + 1))) return std::nullopt;
    hp.name = lower(value.substr(0, close + 1));
    rest = value.substr(close + 1);
  } else {
    const auto colon = value.find(':');
    hp.name = lower(value.substr(0, colon));
    rest = colon == std::string_view::npos ? std::string_view() : value.substr(colon);
    const bool name_ok = !hp.name.empty() && std::all_of(hp.name.begin(), hp.name.end(), [](char c) {
      return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '.' || c == '_';
    });
    if (!name_ok) return std::nullopt;
  }
  if (!rest.empty()) {
    if (rest.front() != ':') return std::nullopt;
    hp.port = small_number(rest.substr(1), 5, 65535);
    if (!hp.port) return std::nullopt;
  }
  return hp;
}

PolicyVerdict check_request(const OriginPolicy& p, const RequestFacts& r) {
  const auto host = parse_host_header(r.host);
  if (!host || !host_allowed(p, *host)) {
    const std::string name = host ? host->name : std::string(trim(r.host));
    return {403, "Host header " + quoted(r.host) + " does not name this server (refused as a possible DNS rebinding "
                 "attack); open the studio as " + server_url(p) + " or http://localhost" +
                 (p.port ? ":" + std::to_string(p.port) : "") +
                 "\n  hint: to reach it under another name, start it with --allowed-host " +
                 (name.empty() ? "<name>" : name)};
  }
  if (!state_changing(r.method)) return {};
  if (r.origin && !same_origin(*r.origin, *host) && !listed_origin(*r.origin, p.allowed_origins)) {
    return {403, "cross-origin " + std::string(r.method) + " from Origin " + quoted(*r.origin) +
                 " refused (protection against cross-site request forgery)\n  hint: to let a web app at that origin "
                 "use this server, start it with --allow-origin " + std::string(trim(*r.origin))};
  }
  if (r.has_body && !accepted_body_type(r.content_type)) {
    return {415, std::string(r.method) + " with Content-Type " + quoted(r.content_type) +
                 " refused: request bodies must be application/json or multipart/form-data (types a cross-site "
                 "form cannot send)\n  hint: send the header Content-Type: application/json (curl: -H "
                 "'Content-Type: application/json')"};
  }
  return {};
}

}  // namespace llmstudio::server
