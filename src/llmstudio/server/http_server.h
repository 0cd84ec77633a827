// The HTTP transport of the studio and `llmstudio serve`: an httplib::Server whose connections are served by our
// own keep-alive loop over our own socket stream, so that slow or hostile clients cannot tie up the workers:
//  - a TOTAL deadline for a request's line and headers (10 s from its first byte; per-read timeouts after that),
//    so a client sending a byte a second is cut off instead of holding a worker;
//  - worker threads started on demand up to a cap (256) instead of a fixed pool, so long event streams and
//    slow clients leave room for /api/health;
//  - a request refused before its body was read (401, 403, 413, ...) ends its connection (Connection: close)
//    without reading the body;
//  - a POST/PUT/PATCH/DELETE without Content-Length or chunked encoding has an empty body (RFC 9112 6.3) instead of
//    a body read until the client closes; a Range header is honoured only with a single range and only on the
//    paths that serve files (TransportLimits::range_paths), else ignored (the whole body, 200), so no response is
//    larger than its file and no JSON or event stream becomes a 206;
//  - the loop ends when the server stops (event streams see their stream become unwritable).
#pragma once

#include <httplib.h>

#include <chrono>
#include <cstddef>
#include <regex>
#include <string>

namespace llmstudio::server {

struct TransportLimits {
  std::size_t max_threads = 256;                // concurrent connections being served
  std::chrono::milliseconds header_timeout{10000};  // request line + headers, from the first byte
  std::string range_paths = "$^";               // regex: GET paths where one Range is served (default: none)
};

class HttpServer : public httplib::Server {
 public:
  explicit HttpServer(TransportLimits limits = {});
  // bind_to_port with a listen backlog of 256 (httplib's is 5: a burst of connections would wait for SYN retries).
  bool bind(const std::string& host, int port);

 private:
  bool process_and_close_socket(socket_t sock) override;

  TransportLimits limits_;
  std::regex range_paths_;
};

// The request normalisation above (empty body without a length, Range only where `range_paths` matches and with
// one range); HttpServer applies it to every request once its headers are read (the fuzz target does too).
void prepare_request(httplib::Request& req, const std::regex& range_paths);

// Called while handling a request (pre-routing): its connection is closed after the response, because its body is
// left unread. Without effect outside an HttpServer connection.
void close_connection_after_response();

}  // namespace llmstudio::server
