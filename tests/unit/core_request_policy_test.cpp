// The studio's request policy against CSRF and DNS rebinding (server/request_policy.h): exact loopback names,
// Host header parsing, and which Host / Origin / Content-Type combinations are refused with 403 or 415.
#include <gtest/gtest.h>

#include "llmstudio/server/request_policy.h"

using namespace llmstudio::server;

TEST(RequestPolicy, LoopbackHostIsExact) {
  for (const char* h : {"localhost", "127.0.0.1", "127.1.2.3", "127.255.255.255", "::1", "[::1]"})
    EXPECT_TRUE(is_loopback_host(h)) << h;
  for (const char* h : {"127.evil.com", "127.0.0.1.evil.com", "127.0.0", "127.0.0.256", "127.0.0.1:80", "128.0.0.1",
                        "localhost.evil.com", "LOCALHOST.", "0.0.0.0", "", "127..0.1", "127.0.0.01a", "[::2]"})
    EXPECT_FALSE(is_loopback_host(h)) << h;
}

TEST(RequestPolicy, ParsesHostHeaders) {
  auto hp = parse_host_header("LocalHost:10101");
  ASSERT_TRUE(hp);
  EXPECT_EQ(hp->name, "localhost");
  EXPECT_EQ(hp->port, 10101);
  hp = parse_host_header("[::1]:8000");
  ASSERT_TRUE(hp);
  EXPECT_EQ(hp->name, "[::1]");
  EXPECT_EQ(hp->port, 8000);
  hp = parse_host_header("example.org");
  ASSERT_TRUE(hp);
  EXPECT_FALSE(hp->port);
  for (const char* bad : {"", "a:b:c", "host:", "host:99999", "host:12ab", "[::1", "ho st", "a/b", "[zz]:1"})
    EXPECT_FALSE(parse_host_header(bad)) << bad;
}

TEST(RequestPolicy, HostMustNameThisServer) {
  OriginPolicy p{"127.0.0.1", 10101, {"studio.lan", "proxy.lan:443"}, {}};
  const auto host = [&](const char* h) { return check_request(p, {"GET", h, "", std::nullopt, false}).status; };
  EXPECT_EQ(host("127.0.0.1:10101"), 0);
  EXPECT_EQ(host("localhost:10101"), 0);
  EXPECT_EQ(host("[::1]:10101"), 0);
  EXPECT_EQ(host("studio.lan:9999"), 0);  // listed without a port: any port
  EXPECT_EQ(host("proxy.lan:443"), 0);
  EXPECT_EQ(host("proxy.lan:10101"), 403);
  EXPECT_EQ(host("rebind.attacker.example:10101"), 403);
  EXPECT_EQ(host("127.evil.com:10101"), 403);
  EXPECT_EQ(host("127.0.0.1:10102"), 403);  // another port
  EXPECT_EQ(host("127.0.0.1"), 403);        // port 80
  EXPECT_EQ(host("10.1.2.3:10101"), 403);   // an address this loopback server is not bound to
  EXPECT_EQ(host(""), 403);
  const auto verdict = check_request(p, {"GET", "evil.example:10101", "", std::nullopt, false});
  EXPECT_NE(verdict.message.find("--allowed-host evil.example"), std::string::npos) << verdict.message;

  OriginPolicy wild{"0.0.0.0", 10101, {}, {}};  // any IP literal (no DNS name can rebind to one), no other names
  EXPECT_EQ(check_request(wild, {"GET", "10.1.2.3:10101", "", std::nullopt, false}).status, 0);
  EXPECT_EQ(check_request(wild, {"GET", "[fe80::1]:10101", "", std::nullopt, false}).status, 0);
  EXPECT_EQ(check_request(wild, {"GET", "127.0.0.1:8080", "", std::nullopt, false}).status, 0);  // docker -p 8080:10101
  EXPECT_EQ(check_request(wild, {"GET", "myhost:10101", "", std::nullopt, false}).status, 403);
  OriginPolicy named{"myhost.lan", 10101, {}, {}};
  EXPECT_EQ(check_request(named, {"GET", "MyHost.lan:10101", "", std::nullopt, false}).status, 0);
}

TEST(RequestPolicy, StateChangingRequestsNeedSameOriginAndJsonOrMultipart) {
  OriginPolicy p{"127.0.0.1", 10101, {}, {"http://app.test:5173"}};
  const auto check = [&](const char* method, const char* type, std::optional<std::string_view> origin, bool body) {
    return check_request(p, {method, "127.0.0.1:10101", type, origin, body}).status;
  };
  EXPECT_EQ(check("POST", "application/json", std::nullopt, true), 0);
  EXPECT_EQ(check("POST", "application/json; charset=utf-8", "http://127.0.0.1:10101", true), 0);
  EXPECT_EQ(check("POST", "multipart/form-data; boundary=x", "http://127.0.0.1:10101", true), 0);
  EXPECT_EQ(check("POST", "application/json", "http://app.test:5173", true), 0);
  EXPECT_EQ(check("POST", "application/json", "http://evil.example", true), 403);
  EXPECT_EQ(check("POST", "application/json", "http://localhost:10101", true), 403);  // not the Host it sent
  EXPECT_EQ(check("DELETE", "", "http://evil.example", false), 403);
  EXPECT_EQ(check("POST", "", "null", false), 403);
  EXPECT_EQ(check("POST", "text/plain", std::nullopt, true), 415);
  EXPECT_EQ(check("POST", "application/x-www-form-urlencoded", "http://127.0.0.1:10101", true), 415);
  EXPECT_EQ(check("POST", "", std::nullopt, true), 415);
  EXPECT_EQ(check("POST", "", std::nullopt, false), 0);  // POST .../start: no body, no type needed
  EXPECT_EQ(check("GET", "text/plain", "http://evil.example", true), 0);  // reads are protected by CORS
}
